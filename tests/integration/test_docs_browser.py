"""`/docs` as a person sees it: a real headless Chromium renders Swagger UI from the running API, offline.

Every host name but 127.0.0.1 resolves to nothing, so a page that needed a CDN would render no operation.
The screenshot is kept under .devstack/test-logs/ (a CI artifact). Chromium is Debian's `chromium`
package, installed by `./dev test`; this test fails, never skips, when it is missing.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile

import pytest

from orders_app.processes import TEST_LOG_DIR, ApiServer

pytestmark = pytest.mark.slow
BROWSER_TIMEOUT_S = 90
RENDER_BUDGET_MS = 20_000  # virtual time: Chromium fast-forwards timers, so this is not wall time


@pytest.fixture(scope="module")
def api(stack_env):
    server = ApiServer("api-docs", workers=1)
    yield server
    server.stop()


def chromium(url: str, *arguments: str) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is not installed: ./dev test installs Debian's chromium package"
    with tempfile.TemporaryDirectory(prefix="docs-chromium-") as profile:
        return subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
             f"--virtual-time-budget={RENDER_BUDGET_MS}", *arguments, url],
            capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)


def test_docs_page_renders_the_order_endpoints_offline(api):
    result = chromium(f"{api.url}/docs", "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    # Swagger UI draws one block per operation; the raw HTML page has none until its scripts ran.
    operations = set(re.findall(r'class="opblock opblock-(\w+)[^"]*".*?data-path="([^"]+)"', dom, re.S))
    assert ("post", "/api/orders") in operations, dom[:3000]
    assert {("get", "/api/orders"), ("get", "/api/orders/{order_id}"),
            ("delete", "/api/orders/{order_id}")} <= operations
    assert "Place an order" in dom and "Order system" in dom
    assert "Failed to load API definition" not in dom


def test_docs_screenshot_is_kept_as_an_artifact(api):
    TEST_LOG_DIR.mkdir(parents=True, exist_ok=True)
    screenshot = TEST_LOG_DIR / "docs.png"
    screenshot.unlink(missing_ok=True)
    result = chromium(f"{api.url}/docs", f"--screenshot={screenshot}", "--window-size=1280,1800")
    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a blank page compresses to a few KB
