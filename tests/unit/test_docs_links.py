"""The README and docs/ are read by someone who cloned this repository alone: every link stays inside it
and points to a file (and heading) that exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parents[2]
PAGES = [ROOT_DIR / "README.md", *sorted((ROOT_DIR / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text()))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def _relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target)


def test_every_relative_link_in_the_readme_and_docs_points_to_a_file_or_heading_that_exists():
    broken = []
    for page in PAGES:
        for target in filter(_relative, _links(page)):
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.is_relative_to(ROOT_DIR):
                broken.append(f"{page.name}: {target} leaves the repository")
            elif not resolved.exists():
                broken.append(f"{page.name}: {target} does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.name}: {target} names no heading of {resolved.name}")
    assert not broken, "\n".join(broken)


def test_no_absolute_link_points_outside_the_service_it_documents():
    """Absolute links may only name the local service (its /docs and /openapi.json), nothing elsewhere."""
    outside = [f"{page.name}: {target}" for page in PAGES for target in _links(page)
               if not _relative(target) and not target.startswith("http://127.0.0.1:3000/")]
    assert not outside, outside


def test_the_readme_starts_with_the_two_commands_that_ci_runs():
    readme = (ROOT_DIR / "README.md").read_text()
    assert readme.startswith("```bash\n./dev run ")
    assert "\n./dev test " in readme.split("```", 2)[1]
    assert "./dev test" in (ROOT_DIR / ".ci" / "run").read_text()
