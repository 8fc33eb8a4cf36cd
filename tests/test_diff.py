"""``ltosyms diff`` on real kernels: section totals against ``size -A``, every BASE function in
exactly one class, symbol deltas that reconcile with section deltas, and a Debian vmlinux that
does not differ from itself."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SAMPLES, Corpus

from ltosyms.diff import ChangeClass, DiffReport, SymbolKind, diff_loaded
from ltosyms.diff.model import SectionClass
from ltosyms.elf.image import open_image
from ltosyms.elf.kernel import LoadedImage, load_vmlinux
from ltosyms.elf.symtab import SymbolTable

needs_binutils = pytest.mark.skipif(
    shutil.which("size") is None or shutil.which("readelf") is None,
    reason="binutils size/readelf (the oracles) not installed",
)


def size_a(path: Path) -> dict[str, int]:
    """``size -A``: section name -> size (the oracle for section totals)."""
    output = subprocess.run(
        ["size", "-A", str(path)], capture_output=True, text=True, check=True
    ).stdout
    sizes: dict[str, int] = {}
    for line in output.splitlines()[2:]:
        fields = line.split()
        if len(fields) == 3 and fields[0] != "Total":
            sizes[fields[0]] = sizes.get(fields[0], 0) + int(fields[1])
        elif fields[:1] == ["Total"]:
            sizes["<Total>"] = int(fields[1])
    return sizes


def readelf_functions(path: Path) -> Counter[tuple[str, int]]:
    """Defined, sized FUNC symbols as ``readelf -sW`` lists them: (name, address)."""
    output = subprocess.run(
        ["readelf", "-sW", str(path)], capture_output=True, text=True, check=True
    ).stdout
    found: Counter[tuple[str, int]] = Counter()
    for line in output.splitlines():
        fields = line.split()
        if (
            len(fields) == 8
            and fields[3] in ("FUNC", "IFUNC")
            and fields[6] not in ("UND", "ABS")
            and int(fields[2], 0) > 0
        ):
            found[(fields[7], int(fields[1], 16))] += 1
    return found


@pytest.fixture(scope="module")
def clang_lto_report(kernel_diff: Callable[..., DiffReport]) -> DiffReport:
    return kernel_diff("clang-nolto", "clang-thinlto")


@pytest.fixture(scope="module")
def gcc_clang_report(kernel_diff: Callable[..., DiffReport]) -> DiffReport:
    # Symbol and size parts only: the DWARF pass is exercised by the other pairs.
    return kernel_diff("gcc-nolto", "clang-nolto", dwarf=False)


# (BASE, NEW, DWARF read): the first LTO diff a clang user makes, gcc against clang without
# DWARF, the first LTO diff a gcc user makes, and one kernel version against the next.
PAIRS = {
    "clang-nolto..clang-thinlto": ("clang-nolto", "clang-thinlto", True),
    "gcc-nolto..clang-nolto": ("gcc-nolto", "clang-nolto", False),
    "gcc-nolto..gcc-lto": ("gcc-nolto", "gcc-lto", True),
    "clang-thinlto..clang-thinlto-6.12": ("clang-thinlto", "clang-thinlto-6.12", True),
}


@pytest.fixture(params=sorted(PAIRS))
def pair(
    request: pytest.FixtureRequest, corpus: Corpus, kernel_diff: Callable[..., DiffReport]
) -> tuple[DiffReport, Path, Path]:
    base, new, dwarf = PAIRS[request.param]
    report = kernel_diff(base, new, dwarf=dwarf)
    return report, corpus.kernel_vmlinux(base), corpus.kernel_vmlinux(new)


@needs_binutils
def test_section_sizes_equal_size_A(pair: tuple[DiffReport, Path, Path]) -> None:
    report, base_path, new_path = pair
    base_oracle, new_oracle = size_a(base_path), size_a(new_path)
    assert {row.name: row.base_size for row in report.sections if row.base_size is not None} == {
        k: v for k, v in base_oracle.items() if k != "<Total>"
    }
    assert {row.name: row.new_size for row in report.sections if row.new_size is not None} == {
        k: v for k, v in new_oracle.items() if k != "<Total>"
    }
    assert sum(row.base_size for row in report.classes) == base_oracle["<Total>"]
    assert sum(row.new_size for row in report.classes) == new_oracle["<Total>"]


@needs_binutils
def test_every_base_function_is_in_exactly_one_class(
    pair: tuple[DiffReport, Path, Path],
) -> None:
    report, base_path, _new_path = pair
    with open_image(base_path) as image:
        symbols = SymbolTable(image)
        seen: Counter[tuple[str, int]] = Counter()
        for change in report.changes:
            if change.base is not None and change.kind is SymbolKind.FUNCTION:
                assert change.change_class is not ChangeClass.NEW
                for index in change.base.symbol_indexes:
                    seen[(symbols.names[index], symbols.link_addresses[index])] += 1
    oracle = readelf_functions(base_path)
    assert oracle, "no functions in the oracle"
    # Every sized FUNC symbol of BASE sits in one change, once (asm NOTYPE code may add more).
    assert all(seen[key] == 1 for key in oracle), [k for k in oracle if seen[k] != 1][:5]
    assert max(seen.values()) == 1
    # BASE groups of size 0 take part only when paired with a sized NEW group.
    classes = Counter(c.change_class for c in report.changes if c.base is not None and c.base.size)
    assert sum(classes.values()) == report.base.functions + report.base.objects


def test_symbol_deltas_reconcile_with_section_deltas(
    pair: tuple[DiffReport, Path, Path],
) -> None:
    report = pair[0]
    loaded = [row for row in report.classes if row.section_class.is_loaded]
    section_delta = sum(row.delta for row in loaded)
    symbol_delta = sum(change.delta for change in report.changes)
    padding_delta = sum(row.padding_delta for row in loaded)
    assert symbol_delta + padding_delta == section_delta
    for row in loaded:
        # Padding is alignment, linker-script fill and unnamed bytes: never more than the
        # section (the small kernels' .text is padded to 6 MiB: more than half of it).
        assert abs(row.base_padding) <= row.base_size
        if row.section_class is SectionClass.TEXT:
            assert row.base_padding >= 0 and row.new_padding >= 0


@needs_binutils
def test_text_symbol_bytes_match_readelf(corpus: Corpus, clang_lto_report: DiffReport) -> None:
    """Distinct (address, size) of sized symbols in .text, counted by readelf."""
    path = corpus.kernel_vmlinux("clang-thinlto")
    output = subprocess.run(
        ["readelf", "-sW", str(path)], capture_output=True, text=True, check=True
    ).stdout
    extents = set()
    for line in output.splitlines():
        fields = line.split()
        if (
            len(fields) == 8
            and fields[6] == "1"
            and int(fields[2], 0) > 0
            and fields[3] not in ("SECTION", "FILE")
        ):
            extents.add((int(fields[1], 16), int(fields[2], 0)))
    text = next(r for r in clang_lto_report.classes if r.section_class is SectionClass.TEXT)
    assert text.new_symbol_bytes == sum(size for _address, size in extents)


def test_clang_thinlto_classes(clang_lto_report: DiffReport) -> None:
    """ThinLTO of the same clang config: promotions, functions inlined across files, no
    gcc-style clones; the inline counts come from both builds' DWARF."""
    classes = Counter(c.change_class for c in clang_lto_report.of_kind(SymbolKind.FUNCTION))
    assert classes[ChangeClass.RENAMED] > 100
    assert classes[ChangeClass.DROPPED_INLINED] > 50
    assert classes[ChangeClass.UNCHANGED] > classes[ChangeClass.SHRUNK]
    for change in clang_lto_report.of_class(ChangeClass.RENAMED, SymbolKind.FUNCTION):
        assert change.base is not None and change.new is not None
        assert any(".llvm." in name for name in change.new.names)
        assert change.base.unit == change.new.unit
    # try_to_wake_up becomes try_to_wake_up.llvm.<hash> (see the corpus README).
    wake = [c for c in clang_lto_report.changes if c.name == "try_to_wake_up"]
    assert len(wake) == 1 and wake[0].change_class is ChangeClass.RENAMED
    for change in clang_lto_report.of_class(ChangeClass.DROPPED_INLINED):
        assert change.inlined_count_new and change.callers_new
        assert sum(caller.count for caller in change.callers_new) == change.inlined_count_new


def test_gcc_clones_against_clang(gcc_clang_report: DiffReport) -> None:
    """gcc's .cold/.part/.constprop/.isra parts belong to their function's group."""
    grouped = [
        c
        for c in gcc_clang_report.changes
        if c.base and len(c.base.names) > 1 and any(".cold" in n for n in c.base.names)
    ]
    assert len(grouped) > 100
    shapes = Counter(c.change_class for c in gcc_clang_report.changes)
    assert shapes[ChangeClass.SPECIALIZED] == 0  # clang adds no clones


@pytest.fixture(scope="module")
def debian(corpus: Corpus) -> Iterator[LoadedImage]:
    loaded = load_vmlinux(corpus.debian_vmlinux())
    yield loaded
    loaded.image.close()


@pytest.mark.slow
def test_debian_against_itself_has_no_differences(corpus: Corpus, debian: LoadedImage) -> None:
    # Symbol and size parts (the DWARF pass takes ~13 s per Debian vmlinux; see bench/).
    second = load_vmlinux(corpus.debian_vmlinux())
    try:
        report = diff_loaded(debian, second, use_dwarf=False)
    finally:
        second.image.close()
    assert report.changes
    assert {c.change_class for c in report.changes} == {ChangeClass.UNCHANGED}
    assert all(row.delta == 0 for row in report.sections)
    assert report.base.functions == report.new.functions > 40_000


@pytest.mark.slow
def test_debian_against_a_sample_does_not_crash(debian: LoadedImage) -> None:
    sample = load_vmlinux(SAMPLES / "vmlinux-gcc")
    try:
        report = diff_loaded(debian, sample, use_dwarf=False)
    finally:
        sample.image.close()
    classes = Counter(c.change_class for c in report.changes)
    assert classes[ChangeClass.DROPPED_REMOVED] > 40_000
    assert (
        classes[ChangeClass.NEW]
        + classes[ChangeClass.GROWN]
        + classes[ChangeClass.SHRUNK]
        + classes[ChangeClass.UNCHANGED]
        > 0
    )
