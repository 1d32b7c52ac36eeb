"""The small markdown helpers the generated docs pages share: reflowed prose, numbers, tables."""
from __future__ import annotations

import textwrap

LINE_CHARS = 110


def prose(template: str, **values) -> str:
    """A template's paragraphs with the figures filled in, each reflowed (figures change line lengths)."""
    paragraphs = template.format(**values).strip().split("\n\n")
    return "\n\n".join(textwrap.fill(" ".join(p.split()), LINE_CHARS, break_on_hyphens=False)
                        for p in paragraphs) + "\n"


def number(value: float, digits: int = 0) -> str:
    """1,234 or 1,234.5: thousands separated, fixed decimals."""
    return f"{value:,.{digits}f}"


def ms(value: float) -> str:
    return f"{value:,.1f} ms"


def table(header: list[str], rows: list[list[str]], align: str) -> str:
    """A markdown table; `align` has one character per column: l (left) or r (right)."""
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
