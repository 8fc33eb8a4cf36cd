"""Spot checks of ``ltosyms diff`` on the sample images, against what MANIFEST.json says each
compiler did (read back from the binaries with nm/readelf/llvm-dwarfdump)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import SAMPLES

from ltosyms.diff import ChangeClass, DiffReport, SymbolKind, diff_images
from ltosyms.diff.classify import clone_shape
from ltosyms.diff.model import Change

MANIFEST_PATH = SAMPLES / "MANIFEST.json"
# (BASE without LTO, NEW with LTO) of the same compiler and sources.
LTO_PAIRS = [
    ("vmlinux-gcc", "vmlinux-gcc-lto"),
    ("vmlinux-clang", "vmlinux-clang-thinlto"),
    ("vmlinux-clang", "vmlinux-clang-lto"),
]

pytestmark = pytest.mark.skipif(
    not MANIFEST_PATH.is_file(), reason=f"{MANIFEST_PATH} not built (testdata/vmlinux-samples)"
)


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return dict(json.loads(MANIFEST_PATH.read_text())["images"])


_reports: dict[tuple[str, str], DiffReport] = {}


@pytest.fixture(params=LTO_PAIRS, ids=lambda pair: f"{pair[0]}..{pair[1]}")
def lto_pair(
    request: pytest.FixtureRequest, manifest: dict[str, Any]
) -> tuple[DiffReport, dict[str, Any], dict[str, Any]]:
    base, new = request.param
    if request.param not in _reports:
        _reports[request.param] = diff_images(SAMPLES / base, SAMPLES / new)
    return _reports[request.param], manifest[base], manifest[new]


def change_with(report: DiffReport, name: str, side: str) -> Change:
    found = [
        change
        for change in report.changes
        if (group := change.base if side == "base" else change.new) and name in group.names
    ]
    assert len(found) == 1, f"{name}: in {len(found)} changes"
    return found[0]


def test_function_inlined_everywhere_is_dropped_inlined_with_count_and_callers(
    lto_pair: tuple[DiffReport, dict[str, Any], dict[str, Any]],
) -> None:
    report, base, new = lto_pair
    checked = 0
    for entry in new["inlined_everywhere"]:
        if entry["state"] != "inlined_only":
            continue
        base_entry = next(e for e in base["inlined_everywhere"] if e["name"] == entry["name"])
        if base_entry["out_of_line"] is None:
            continue  # no out-of-line copy in BASE either: nothing was dropped
        change = change_with(report, base_entry["out_of_line"]["name"], "base")
        assert change.change_class is ChangeClass.DROPPED_INLINED
        assert change.inlined_count_new == entry["inlined_instance_count"]
        assert change.inlined_count_base == base_entry["inlined_instance_count"]
        assert sorted(caller.name for caller in change.callers_new) == sorted(entry["callers"])
        checked += 1
    assert checked, "the manifest names no function LTO inlined everywhere"


def test_removed_function_is_dropped_removed(
    lto_pair: tuple[DiffReport, dict[str, Any], dict[str, Any]],
) -> None:
    report, base, new = lto_pair
    assert new["removed"]["symbol"] is None and new["removed"]["inlined_instance_count"] == 0
    change = change_with(report, base["removed"]["symbol"]["name"], "base")
    assert change.change_class is ChangeClass.DROPPED_REMOVED
    assert change.inlined_count_new == 0


def test_new_clones_are_specialized_and_new_cold_parts_split(
    lto_pair: tuple[DiffReport, dict[str, Any], dict[str, Any]],
) -> None:
    report, base, new = lto_pair
    base_shapes: dict[str, set[tuple[str, ...]]] = {}
    for entries in base["clones"].values():
        for entry in entries:
            base_shapes.setdefault(entry["base"], set()).add(clone_shape(entry["name"]))
    for entries in new["clones"].values():
        for entry in entries:
            change = change_with(report, entry["name"], "new")
            shape = clone_shape(entry["name"])
            if shape in base_shapes.get(entry["base"], set()):
                assert change.change_class is not ChangeClass.NEW
                continue
            # New kinds besides .cold: specialized (when the function has such a clone).
            new_kinds = {
                kind
                for name in change.new.names  # type: ignore[union-attr]
                for kind in clone_shape(name)
            } - {k for s in base_shapes.get(entry["base"], set()) for k in s}
            expected = ChangeClass.SPLIT if new_kinds <= {"cold"} else ChangeClass.SPECIALIZED
            assert change.change_class is expected, entry["name"]


def test_promoted_statics_are_renamed(
    lto_pair: tuple[DiffReport, dict[str, Any], dict[str, Any]],
) -> None:
    report, base, new = lto_pair
    base_symbols = base["text_symbols"] + base["data"]["objects"]
    base_names = {e["name"] for e in base_symbols}
    base_bases = {e["base"] for e in base_symbols}
    new_clones = {e["name"] for entries in new["clones"].values() for e in entries}
    checked = 0
    for entries in new["promotions"].values():
        for entry in entries:
            if entry["base"] not in base_bases:
                continue  # e.g. clang's `.str.5`: a local label without LTO, not a symbol
            change = change_with(report, entry["name"], "new")
            assert change.base is not None, entry["name"]
            assert entry["name"] not in base_names
            if entry["kind"] == "FUNC" and not set(change.new.names) & new_clones:  # type: ignore[union-attr]
                assert change.change_class is ChangeClass.RENAMED, entry["name"]
                checked += 1
            elif entry["kind"] == "FUNC":
                assert change.change_class in (
                    ChangeClass.RENAMED,
                    ChangeClass.SPECIALIZED,
                    ChangeClass.SPLIT,
                )
    assert checked


def test_duplicate_statics_stay_apart(
    lto_pair: tuple[DiffReport, dict[str, Any], dict[str, Any]],
) -> None:
    report, base, _new = lto_pair
    members = base["duplicate_statics"]["members"]
    changes = [
        c
        for c in report.of_kind(SymbolKind.FUNCTION)
        if c.base and c.base.base_name == base["duplicate_statics"]["name"]
    ]
    assert len(changes) == len(members) == 3
    decl_files = sorted(m["decl_file"].rsplit("/", 1)[-1] for m in members)
    assert sorted((c.base.unit or "").rsplit("/", 1)[-1] for c in changes if c.base) == decl_files
    for change in changes:
        assert change.new is not None
        assert change.base is not None and change.base.unit == change.new.unit


def test_sample_reconciles_and_names_every_function_once(
    lto_pair: tuple[DiffReport, dict[str, Any], dict[str, Any]],
) -> None:
    report, base, _new = lto_pair
    loaded = [row for row in report.classes if row.section_class.is_loaded]
    assert sum(c.delta for c in report.changes) + sum(r.padding_delta for r in loaded) == sum(
        r.delta for r in loaded
    )
    names = [name for c in report.of_kind(SymbolKind.FUNCTION) if c.base for name in c.base.names]
    sized_text = [e["name"] for e in base["text_symbols"] if e["elf_size"]]
    assert sorted(n for n in names if n in set(sized_text)) == sorted(sized_text)


def test_class_deltas_are_the_sums_of_their_changes_deltas(
    lto_pair: tuple[DiffReport, dict[str, Any], dict[str, Any]],
) -> None:
    report, _base, _new = lto_pair
    for (change_class, kind), changes in report.by_class().items():
        assert report.class_delta(change_class, kind) == sum(c.delta for c in changes)
    assert report.class_delta(ChangeClass.FOLDED, SymbolKind.OBJECT) == 0  # no such change
