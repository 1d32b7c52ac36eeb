"""gunicorn's own refusals in the JSON error shape.

gunicorn refuses a request it cannot parse before the application sees it (a request line over
`limit_request_line`: 414; more header fields than `limit_request_fields`, or one longer than
`limit_request_field_size`: 431; a malformed request line, header or chunked body: 400; a transfer coding it
does not know: 501) and writes an HTML page with `gunicorn.util.write_error`. `install` replaces that function,
in the worker, with one that writes the same status in the JSON error shape (the 501 as a 400: the request is
at fault, and no input may get a 5xx). The connection is closed after it, as gunicorn always does: where
the rest of an unparsable request ends is unknown.
"""
from __future__ import annotations

import json

from gunicorn import util

from orders_app.errors import error_body

_CODES = {400: "BAD_REQUEST", 403: "FORBIDDEN", 414: "URI_TOO_LONG", 417: "EXPECTATION_FAILED",
          431: "REQUEST_HEADER_FIELDS_TOO_LARGE", 500: "INTERNAL_ERROR"}


def install(limit_request_line: int, limit_request_fields: int, limit_request_field_size: int) -> None:
    messages = {
        414: f"The request line (method, path and query) is longer than {limit_request_line} bytes.",
        431: (f"The request has more than {limit_request_fields} header fields, or one longer than "
              f"{limit_request_field_size} bytes."),
        500: "Something went wrong on our side; it has been logged.",
    }

    def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
        if status_int == 501:  # an unknown Transfer-Encoding
            status_int, reason = 400, "Bad Request"
        code = _CODES.get(status_int, "BAD_REQUEST" if status_int < 500 else "INTERNAL_ERROR")
        body = json.dumps(error_body(code, messages.get(status_int) or f"{mesg or reason}.")).encode()
        head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
        util.write_nonblock(sock, head + body)

    util.write_error = write_json_error
