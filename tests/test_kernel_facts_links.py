"""Comments cite the kernel facts they rely on as ``docs/kernel-facts.md#<anchor>``: every such
anchor exists in the document, and nothing cites a document outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import PROJECT

FACTS = PROJECT / "docs" / "kernel-facts.md"
CITATION = re.compile(r"kernel-facts\.md#([a-z0-9-]+)")
# The form the comments used before the document existed ("DOMAIN §3", "DOMAIN.md section 3").
OUTSIDE = re.compile(r"DOMAIN(?:\.md)? (?:§|section)")


def sources() -> list[Path]:
    folders = ("ltosyms", "tests", "tools", "bench")
    return sorted(path for folder in folders for path in (PROJECT / folder).rglob("*.py"))


def test_every_cited_anchor_is_in_the_document() -> None:
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', FACTS.read_text()))
    assert len(anchors) == 12
    cited = {
        (path.relative_to(PROJECT).as_posix(), anchor)
        for path in sources()
        for anchor in CITATION.findall(path.read_text())
    }
    assert len(cited) >= 20
    assert [(path, anchor) for path, anchor in sorted(cited) if anchor not in anchors] == []


def test_no_comment_cites_a_document_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    citing = [
        path.relative_to(PROJECT).as_posix()
        for path in sources()
        if path.resolve() != this and OUTSIDE.search(path.read_text())
    ]
    assert citing == []
