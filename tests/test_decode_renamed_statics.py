"""Clang full LTO's renamed statics beside a global, printed as 5.16 - 6.1.41 prints them.

``testdata/vmlinux-samples/src/lib.c`` defines a global ``stats_show()``; ``drv_alpha.c``,
``drv_beta.c`` and ``drv_gamma.c`` each define a static one. Full LTO links every file into one
module: the global keeps its name and the statics become ``stats_show.N``. kernel/kallsyms.c
``cleanup_symbol_name()`` of 5.16 - 6.1.41 (commit 6eb4bd92c1ce, ``strchr(s, '.')``) prints all
four as ``stats_show``, so the plain name is another function for three of them: on a 6.1
full-LTO kernel ``static_key_enable+0x31/0x50`` means ``static_key_enable.580`` and
``branches_show+0x1a/0x20`` means ``branches_show.382``. Alpha's copy has the global's
kallsyms size and its call at the same offset, beta's the same size with its call one byte
earlier, gamma's another size: the frame alone (``symbolize -R``) is ambiguous between the
global and alpha's copy, and resolves beta's copy by the call and gamma's by the size.

The answer must not depend on the era the build's version names: the sample's banner says
6.1.0 (first-dot), a 6.1.192 build's says 6.1.42+ (``.llvm.`` cut only), and a log may come
from a backport. Each era is made the build's own in turn (``Decoder(rule=...)``); when only
the own era was tried, a 6.1.192 full-LTO kernel answered such frames with the plain name.

Expectations come from ``MANIFEST.json`` (``global_and_statics``: ``nm``, ``objdump`` and
``llvm-dwarfdump`` read back from the image), never from ltosyms.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from ltosyms.cli import cli
from ltosyms.context import ImageContext, Session
from ltosyms.decode.candidates import EvidenceKind
from ltosyms.decode.decode import Decoder
from ltosyms.decode.symbolize import parse_query, symbolize
from ltosyms.names.kallsyms import CLEANUP_RULES, CleanupRule
from ltosyms.oops.records import FrameRole

IMAGE = "vmlinux-clang-lto"
FACTS: dict[str, Any] = json.loads((SAMPLES / "MANIFEST.json").read_text())["images"][IMAGE]
NAME = FACTS["global_and_statics"]["name"]


@dataclass(frozen=True, slots=True)
class Copy:
    elf_name: str
    link_address: int
    kallsyms_size: int
    return_offsets: tuple[int, ...]  # after each call inside it, from the symbol
    decl_file: str
    external: bool  # DW_AT_external: the global of lib.c


COPIES = tuple(
    Copy(
        elf_name=member["name"],
        link_address=int(member["address"], 16),
        kallsyms_size=member["kallsyms_size"],
        return_offsets=tuple(member["return_offsets"]),
        decl_file=member["decl_file"],
        external=member["external"],
    )
    for member in FACTS["global_and_statics"]["members"]
)
QUERIES = [(copy, offset) for copy in COPIES for offset in copy.return_offsets]


def fitting(copy: Copy, offset: int) -> set[int]:
    """The copies a frame ``NAME+offset/size`` of ``copy`` can be: same kallsyms size, and a
    call ending at the same offset."""
    return {
        c.link_address
        for c in COPIES
        if c.kallsyms_size == copy.kallsyms_size and offset in c.return_offsets
    }


def test_the_sample_has_every_case() -> None:
    """The global keeps the plain name; of the renamed statics one cannot be told from it,
    one is told by the call at the return address, one by the printed size."""
    assert FACTS["properties"]["renamed_beside_global"] == {
        "status": "present",
        "expected": "present",
    }
    (plain,) = [c for c in COPIES if c.elf_name == NAME]
    assert plain.external and plain.decl_file.endswith("/lib.c")
    renamed = [c for c in COPIES if c is not plain]
    assert len(renamed) == 3
    assert all(
        c.elf_name.startswith(f"{NAME}.") and c.elf_name[len(NAME) + 1 :].isdigit() for c in renamed
    )

    def case(copy: Copy) -> str:
        if copy.kallsyms_size != plain.kallsyms_size:
            return "size tells"
        return "call tells" if copy.return_offsets != plain.return_offsets else "nothing tells"

    assert Counter(case(c) for c in renamed) == {
        "nothing tells": 1,
        "call tells": 1,
        "size tells": 1,
    }


@pytest.fixture(scope="module")
def loaded() -> ImageContext:
    return Session(None).open_vmlinux(SAMPLES / IMAGE)


@pytest.mark.parametrize("own", CLEANUP_RULES, ids=[rule.name for rule in CLEANUP_RULES])
@pytest.mark.parametrize(
    ("copy", "offset"), QUERIES, ids=[f"{c.elf_name}+{o:#x}" for c, o in QUERIES]
)
def test_first_dot_return_address_alone(
    loaded: ImageContext, own: CleanupRule, copy: Copy, offset: int
) -> None:
    """``symbolize -R 'stats_show+0xRET/0xSIZE'`` for a return address inside each copy:
    the one copy that fits, or every copy that fits as ambiguous; never the plain name
    because it is the plain name, whatever era the build's own."""
    printed = f"{NAME}+{offset:#x}/{copy.kallsyms_size:#x}"
    decoder = Decoder(loaded, rule=own)
    resolved = symbolize(decoder, parse_query(printed, FrameRole.RETURN_ADDRESS)).resolved
    expected = fitting(copy, offset)
    same_size = sum(1 for c in COPIES if c.kallsyms_size == copy.kallsyms_size)
    steps = [(e.kind, e.candidates_before, e.candidates_after) for e in resolved.evidence]
    # Every copy is a candidate: the plain name exactly, the others under the first-dot era.
    assert steps[0] == (EvidenceKind.CLEANUP_NAME, 0, len(COPIES))
    assert (EvidenceKind.KALLSYMS_SIZE, len(COPIES), same_size) in steps
    if len(expected) > 1:
        assert resolved.ambiguous and resolved.symbol is None
        assert {c.symbol.link_address for c in resolved.candidates} == expected
        assert not resolved.locations  # no source line is picked for one of them
        assert steps[-1] == (EvidenceKind.CALL_AT_RETURN, same_size, len(expected))
        return
    assert expected == {copy.link_address}
    assert not resolved.ambiguous and resolved.symbol is not None
    assert (resolved.symbol.name, resolved.symbol.link_address) == (
        copy.elf_name,
        copy.link_address,
    )
    assert resolved.call_site is not None
    assert resolved.call_site.link_address + resolved.call_site.length == (
        copy.link_address + offset
    )
    assert resolved.locations[-1].full_path == copy.decl_file
    if same_size > 1:
        assert steps[-1] == (EvidenceKind.CALL_AT_RETURN, same_size, 1)


def test_symbolize_cli_json(tmp_path: Path) -> None:
    """The issue's query through the command: each copy's frame, printed first-dot."""
    queries = [f"{NAME}+{o:#x}/{c.kallsyms_size:#x}" for c, o in QUERIES]
    result = CliRunner().invoke(
        cli,
        ["symbolize", str(SAMPLES / IMAGE), "-R", "--json", "--cache-dir", str(tmp_path)],
        input="\n".join(queries) + "\n",
    )
    assert result.exit_code == 0, result.stderr
    results = json.loads(result.stdout)["results"]
    assert [r["query"] for r in results] == queries
    by_address = {c.link_address: c.elf_name for c in COPIES}
    for (copy, offset), answer in zip(QUERIES, results, strict=True):
        resolved = answer["resolved"]
        expected = sorted(by_address[a] for a in fitting(copy, offset))
        if len(expected) > 1:
            assert resolved["ambiguous"] is True and resolved["symbol"] is None
            assert sorted(c["symbol"] for c in resolved["candidates"]) == expected
        else:
            assert resolved["ambiguous"] is False
            assert resolved["symbol"] == copy.elf_name
            assert int(resolved["address"], 16) == copy.link_address + offset


@pytest.mark.parametrize("own", CLEANUP_RULES, ids=[rule.name for rule in CLEANUP_RULES])
def test_a_size_no_copy_has_leaves_the_frame_unresolved(
    loaded: ImageContext, own: CleanupRule
) -> None:
    """A printed size that fits none of the copies says the log is from another build: no
    copy is kept anyway (a 6.1 full-LTO kernel's plain ``static_key_enable`` was, before
    every era was tried), the frame is unresolved with the reason."""
    sizes = {c.kallsyms_size for c in COPIES}
    size = next(s for s in range(0x10, 0x1000, 0x10) if s not in sizes)
    copy = COPIES[0]
    printed = f"{NAME}+{copy.return_offsets[0]:#x}/{size:#x}"
    decoder = Decoder(loaded, rule=own)
    resolved = symbolize(decoder, parse_query(printed, FrameRole.RETURN_ADDRESS)).resolved
    assert resolved.symbol is None and not resolved.ambiguous and not resolved.candidates
    assert not resolved.locations
    steps = [(e.kind, e.candidates_before, e.candidates_after) for e in resolved.evidence]
    assert steps == [
        (EvidenceKind.CLEANUP_NAME, 0, len(COPIES)),
        (EvidenceKind.KALLSYMS_SIZE, len(COPIES), 0),
    ]
    (note,) = resolved.notes
    reason = f"unresolved: printed size {size:#x} fits none of the {len(COPIES)} symbol(s) "
    assert note.startswith(reason + f"printed as {NAME} (kallsyms sizes ")
    listed = note.removesuffix(")").rpartition("kallsyms sizes ")[2].split(", ")
    assert {int(s, 16) for s in listed} == sizes
