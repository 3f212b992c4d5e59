"""The contracts in docs/ are the ones the code implements, and the code cites only them."""

from __future__ import annotations

import re
from pathlib import Path

from hookshield.scanner.registry import CHECKS

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"


def test_the_check_catalogue_in_docs_is_the_registry() -> None:
    rows = re.findall(
        r"^\| `([a-z]+\.[a-z0-9-]+)` \| ([a-z_]+) \| ([a-z]+) \|",
        (DOCS / "scanner-checks.md").read_text(),
        flags=re.MULTILINE,
    )
    documented = {check_id: (category, severity) for check_id, category, severity in rows}
    registered = {check.id: (str(check.category), str(check.severity)) for check in CHECKS.values()}
    assert documented == registered


def test_code_and_tests_cite_documents_inside_the_repository() -> None:
    citing_outside = [
        str(path.relative_to(REPO))
        for tree in ("src", "tests", "bench", "tools")
        for path in (REPO / tree).rglob("*")
        if path.suffix in (".py", ".json", ".md")
        and path != Path(__file__)
        and "shared/" in path.read_text(encoding="utf-8")
    ]
    assert citing_outside == []


def test_every_relative_link_and_cited_document_exists() -> None:
    """Markdown links and backquoted ``*.md`` paths in README.md and docs/ resolve."""
    broken = []
    for document in (REPO / "README.md", *sorted(DOCS.glob("*.md"))):
        text = document.read_text()
        targets = re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", text)
        targets += re.findall(r"`([\w./-]+\.md)`", text)
        for target in targets:
            if not (document.parent / target).exists() and not (REPO / target).exists():
                broken.append(f"{document.name}: {target}")
    assert broken == []


def test_the_readme_links_every_document_in_docs() -> None:
    readme = (REPO / "README.md").read_text()
    assert [p.name for p in sorted(DOCS.glob("*.md")) if f"docs/{p.name}" not in readme] == []
