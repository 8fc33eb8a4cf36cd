"""What ``ltosyms diff`` says about LTO on the corpus kernels, checked against ``readelf``, ``nm``
and ``llvm-dwarfdump``: section classes from each build's own headers, objects that became
empty, collections of string literals, hot/cold splits, function bytes, same-named statics of
different files, identical code folding, hash-only renames, binding changes, outlined
functions, modules and architectures."""

from __future__ import annotations

import csv
import io
import logging
import re
import shutil
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import Corpus

from ltosyms.cli import cli
from ltosyms.diff import ChangeClass, DiffReport, SymbolKind, diff_images
from ltosyms.diff.model import SectionClass, Visibility
from ltosyms.elf.image import open_image

needs_binutils = pytest.mark.skipif(
    shutil.which("nm") is None or shutil.which("readelf") is None,
    reason="binutils nm/readelf (the oracles) not installed",
)
needs_dwarfdump = pytest.mark.skipif(
    shutil.which("llvm-dwarfdump") is None, reason="llvm-dwarfdump (the oracle) not installed"
)
# A promotion suffix ThinLTO adds: `foo.llvm.<decimal>`.
LLVM = re.compile(r"\.llvm\.\d+$")


def nm_symbols(path: Path) -> list[tuple[int, int | None, str, str]]:
    """(address, size or None, type letter, name) of every defined symbol, ``nm -S``."""
    output = subprocess.run(
        ["nm", "-S", "--defined-only", str(path)], capture_output=True, text=True, check=True
    ).stdout
    symbols = []
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 4:
            symbols.append((int(fields[0], 16), int(fields[1], 16), fields[2], fields[3]))
        elif len(fields) == 3:
            symbols.append((int(fields[0], 16), None, fields[1], fields[2]))
    return symbols


def readelf_sections(path: Path) -> dict[int, tuple[str, str, int, int, str]]:
    """Section index -> (name, type, address, size, flags), ``readelf -SW`` (no null section)."""
    output = subprocess.run(
        ["readelf", "-SW", str(path)], capture_output=True, text=True, check=True
    ).stdout
    sections = {}
    for line in output.splitlines():
        match = re.match(
            r"\s*\[\s*(\d+)\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+"
            r"([A-Za-z]*)\s",
            line,
        )
        if match and match.group(1) != "0":
            index, name, kind, address, size, flags = match.groups()
            sections[int(index)] = (name, kind, int(address, 16), int(size, 16), flags)
    return sections


def class_totals_from_headers(path: Path) -> dict[str, int]:
    """Bytes per class from readelf's section headers, by the README's rules: freed after
    boot (between __init_begin and __init_end) is init, executable is text, NOBITS is bss,
    read-only (or .rodata*) is rodata, the rest of what is loaded is data."""
    symbols = {name: address for address, _size, _kind, name in nm_symbols(path)}
    init_begin, init_end = symbols["__init_begin"], symbols["__init_end"]
    totals: Counter[str] = Counter()
    for name, kind, address, size, flags in readelf_sections(path).values():
        if "A" not in flags:
            if kind not in ("RELA", "REL", "SYMTAB", "STRTAB"):
                totals["debug" if name.startswith(".debug") else "other"] += size
            continue
        if (init_begin <= address < init_end and size) or name.startswith((".init.", ".exit.")):
            totals["init"] += size
        elif "X" in flags:
            totals["text"] += size
        elif kind == "NOBITS":
            totals["bss"] += size
        elif name.startswith(".rodata") or "W" not in flags:
            totals["rodata"] += size
        else:
            totals["data"] += size
    return dict(totals)


@pytest.fixture(scope="module")
def clang_lto(kernel_diff: Callable[..., DiffReport]) -> DiffReport:
    return kernel_diff("clang-nolto", "clang-thinlto")


@pytest.fixture(scope="module")
def gcc_to_clang_lto(kernel_diff: Callable[..., DiffReport]) -> DiffReport:
    return kernel_diff("gcc-nolto", "clang-thinlto")


@pytest.fixture(scope="module")
def clang_to_gcc(kernel_diff: Callable[..., DiffReport]) -> DiffReport:
    return kernel_diff("clang-nolto", "gcc-nolto")


@pytest.fixture(scope="module")
def gcc_lto(kernel_diff: Callable[..., DiffReport]) -> DiffReport:
    return kernel_diff("gcc-nolto", "gcc-lto")


# -- 1. each build's sections by its own headers ---------------------------------------------


@needs_binutils
def test_new_sections_are_classed_by_their_own_headers_whatever_base(
    corpus: Corpus, clang_lto: DiffReport, gcc_to_clang_lto: DiffReport
) -> None:
    oracle = class_totals_from_headers(corpus.kernel_vmlinux("clang-thinlto"))
    for report in (clang_lto, gcc_to_clang_lto):
        assert {row.section_class.value: row.new_size for row in report.classes} == oracle
    gcc_oracle = class_totals_from_headers(corpus.kernel_vmlinux("gcc-nolto"))
    assert {row.section_class.value: row.base_size for row in gcc_to_clang_lto.classes} == (
        gcc_oracle
    )
    # .orc_lookup: NOBITS under GNU ld, PROGBITS under ld.lld.
    kinds = {
        variant: {
            name: kind
            for name, kind, *_ in readelf_sections(corpus.kernel_vmlinux(variant)).values()
        }
        for variant in ("gcc-nolto", "clang-thinlto")
    }
    assert kinds["gcc-nolto"][".orc_lookup"] == "NOBITS"
    assert kinds["clang-thinlto"][".orc_lookup"] == "PROGBITS"
    row = next(row for row in gcc_to_clang_lto.sections if row.name == ".orc_lookup")
    assert (row.base_class, row.new_class) == (SectionClass.BSS, SectionClass.RODATA)


# -- 2. objects that are still there, with size 0 --------------------------------------------


@needs_binutils
def test_objects_emptied_by_thinlto_are_not_dropped(corpus: Corpus, clang_lto: DiffReport) -> None:
    base = nm_symbols(corpus.kernel_vmlinux("clang-nolto"))
    new = nm_symbols(corpus.kernel_vmlinux("clang-thinlto"))
    new_names = {LLVM.sub("", name) for _a, _s, _k, name in new} | {n for *_, n in new}
    empty_in_new = {LLVM.sub("", name) for _a, size, _k, name in new if size is None}
    sized_base_objects = {name for _a, size, kind, name in base if size and kind in "bBdDrR"}
    # Every BASE object whose name NEW defines with size 0 ...
    oracle = sized_base_objects & empty_in_new
    assert len(oracle) > 100  # the lockdep keys (struct lock_class_key is empty here)
    emptied = {
        name
        for change in clang_lto.of_kind(SymbolKind.OBJECT)
        if change.base is not None and change.new is not None and change.new.size == 0
        for name in change.base.names
    }
    # ... is paired with it, and nothing else is.
    assert emptied == oracle
    # What is left as dropped_removed is really gone from NEW.
    dropped = [
        name
        for change in clang_lto.of_class(ChangeClass.DROPPED_REMOVED)
        for name in change.base.names  # type: ignore[union-attr]
    ]
    assert dropped and not set(dropped) & new_names


# -- 3. collections of objects are labelled as groups ----------------------------------------


@needs_binutils
def test_string_literals_are_one_labelled_row_per_module(
    corpus: Corpus, clang_lto: DiffReport
) -> None:
    new = nm_symbols(corpus.kernel_vmlinux("clang-thinlto"))
    literals = {
        name
        for _a, size, _k, name in new
        if size and re.fullmatch(r"\.str(\.\d+)?", LLVM.sub("", name))
    }
    rows = [
        change
        for change in clang_lto.of_kind(SymbolKind.OBJECT)
        if change.new is not None and change.new.base_name == ".str"
    ]
    assert sum(len(change.new.names) for change in rows) == len(literals)  # type: ignore[union-attr]
    for change in rows:
        assert change.new is not None and set(change.new.names) <= literals
        count = len(change.new.names)
        if change.new.member_count > 1:  # not one string under two names (merged literals)
            assert change.label == f"{count} string literals (.str.*)"
        else:
            assert change.label == change.new.main_name
    biggest = max(rows, key=lambda change: change.delta)
    assert biggest.label.startswith(f"{len(biggest.new.names)} string literals")  # type: ignore[union-attr]
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            str(corpus.kernel_vmlinux("clang-nolto")),
            str(corpus.kernel_vmlinux("clang-thinlto")),
            "--format",
            "bloat-o-meter",
        ],
    )
    assert result.exit_code == 0
    assert f".str.*[{len(biggest.new.names)}]" in result.stdout  # type: ignore[union-attr]
    printed = {line.split()[0] for line in result.stdout.splitlines()[2:-1]}
    collections = [c.new for c in rows if c.new is not None and c.new.member_count > 1]
    assert collections and not printed & {group.main_name for group in collections}


# -- 4. hot/cold splits are not specializations ----------------------------------------------


@needs_binutils
def test_hot_cold_splits_have_their_own_class(corpus: Corpus, clang_to_gcc: DiffReport) -> None:
    clang = nm_symbols(corpus.kernel_vmlinux("clang-nolto"))
    gcc = nm_symbols(corpus.kernel_vmlinux("gcc-nolto"))
    clang_names = Counter(name for _a, size, kind, name in clang if size and kind in "tTW")
    gcc_by_base: dict[str, set[str]] = defaultdict(set)
    for _a, size, kind, name in gcc:
        if size and kind in "tTW":
            gcc_by_base[re.split(r"\.(?:cold|part|constprop|isra)\b", name)[0]].add(name)
    # Names defined once in both: gcc made exactly `f` and `f.cold` of clang's `f`.
    oracle = {
        name
        for name, count in clang_names.items()
        if count == 1 and gcc_by_base.get(name) == {name, name + ".cold"}
    }
    assert len(oracle) > 400
    split = {c.name for c in clang_to_gcc.of_class(ChangeClass.SPLIT)}
    assert oracle <= split
    for change in clang_to_gcc.of_class(ChangeClass.SPLIT):
        assert change.new is not None
        assert any(".cold" in name for name in change.new.names)
        assert not any(re.search(r"\.(part|constprop|isra)\.", n) for n in change.new.names)
    for change in clang_to_gcc.of_class(ChangeClass.SPECIALIZED):
        assert change.new is not None
        assert any(re.search(r"\.(part|constprop|isra)\.", n) for n in change.new.names)


# -- 5. function bytes beside section sizes --------------------------------------------------


def function_bytes(path: Path) -> int:
    """Distinct (address, size) of sized FUNC symbols, and NOTYPE ones in executable
    sections, of loaded sections: readelf's answer to "how much code"."""
    sections = readelf_sections(path)
    symtab = subprocess.run(
        ["readelf", "-sW", str(path)], capture_output=True, text=True, check=True
    ).stdout
    extents = set()
    for line in symtab.splitlines():
        fields = line.split()
        if len(fields) != 8 or not fields[6].isdigit() or int(fields[2], 0) == 0:
            continue
        flags = sections[int(fields[6])][4]
        if "A" in flags and (
            fields[3] in ("FUNC", "IFUNC") or (fields[3] == "NOTYPE" and "X" in flags)
        ):
            extents.add((int(fields[1], 16), int(fields[2], 0)))
    return sum(size for _address, size in extents)


@needs_binutils
@pytest.mark.parametrize("fixture", ["clang_lto", "gcc_lto"])
def test_function_bytes_are_the_sum_of_function_sizes(
    corpus: Corpus, fixture: str, request: pytest.FixtureRequest
) -> None:
    report: DiffReport = request.getfixturevalue(fixture)
    assert report.base.function_bytes == function_bytes(Path(report.base.path))
    assert report.new.function_bytes == function_bytes(Path(report.new.path))
    text = next(row for row in report.classes if row.section_class is SectionClass.TEXT)
    # The corpus kernels pad .text to one size: the section hides what the code did.
    assert text.delta == 0 and report.new.function_bytes != report.base.function_bytes


# -- 6. same-named statics pair by file; identical code folding ------------------------------


@pytest.mark.parametrize("fixture", ["gcc_to_clang_lto", "clang_to_gcc", "gcc_lto"])
def test_statics_of_different_files_are_never_paired(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    report: DiffReport = request.getfixturevalue(fixture)
    crossed = [
        change
        for change in report.changes
        if change.base is not None
        and change.new is not None
        and change.base.unit
        and change.new.unit
        and change.base.unit != change.new.unit
        and not (change.base.is_global or change.new.is_global)
    ]
    assert crossed == []
    put_page = [c for c in report.changes if c.name == "put_page"]
    assert put_page
    for change in put_page:
        if change.base and change.new:
            assert change.base.unit == change.new.unit


@needs_binutils
@pytest.mark.parametrize("direction", ["clang-to-gcc", "gcc-to-clang"])
def test_identical_code_folding_is_reported_as_folded(
    corpus: Corpus, direction: str, kernel_diff: Callable[..., DiffReport]
) -> None:
    # Oracle: names gcc puts at one address and size that clang keeps apart.
    gcc = nm_symbols(corpus.kernel_vmlinux("gcc-nolto"))
    clang = nm_symbols(corpus.kernel_vmlinux("clang-nolto"))
    clang_at = {name: address for address, size, kind, name in clang if size and kind in "tT"}
    same_extent: dict[tuple[int, int], set[str]] = defaultdict(set)
    for address, size, kind, name in gcc:
        if size and kind in "tT":
            same_extent[(address, size)].add(name)
    folded_sets = [
        names
        for names in same_extent.values()
        if len({clang_at[n] for n in names if n in clang_at}) > 1
    ]
    assert folded_sets == [{"ct_kernel_enter_state", "ct_kernel_exit_state"}]
    base, new = ("clang-nolto", "gcc-nolto")[:: 1 if direction == "clang-to-gcc" else -1]
    report = kernel_diff(base, new)
    folded = report.of_class(ChangeClass.FOLDED)
    assert [(c.name, c.folded_with) for c in folded] == [
        ("ct_kernel_exit_state", "ct_kernel_enter_state")
    ]
    assert folded[0].delta == (-20 if direction == "clang-to-gcc" else 20)


# -- 7. hash-only renames are no renames ------------------------------------------------------


def rehashed_copy(source: Path, target: Path) -> int:
    """``source`` with every ``.llvm.<hash>`` of ``.strtab`` replaced by another number of the
    same length: what a rebuild after an unrelated edit does to ThinLTO's module hashes."""
    data = bytearray(source.read_bytes())
    with open_image(source) as image:
        strtab = image.get_section(".strtab")
        assert strtab is not None
        start, end = strtab.file_offset, strtab.file_offset + strtab.size
    changed = 0
    for match in re.finditer(rb"\.llvm\.(\d+)\x00", bytes(data[start:end])):
        digits = match.group(1)
        rotated = bytes((d - 0x30 + 1) % 10 + 0x30 for d in digits)
        if rotated[0] == 0x30:
            rotated = b"1" + rotated[1:]
        data[start + match.start(1) : start + match.end(1)] = rotated
        changed += 1
    target.write_bytes(bytes(data))
    return changed


@needs_binutils
def test_thinlto_builds_that_differ_only_in_hashes_are_unchanged(
    corpus: Corpus, tmp_path: Path
) -> None:
    source = corpus.kernel_vmlinux("clang-thinlto")
    rehashed = tmp_path / "vmlinux"
    assert rehashed_copy(source, rehashed) > 900
    report = diff_images(source, rehashed, use_dwarf=False)
    llvm_names = {name for *_, name in nm_symbols(rehashed) if LLVM.search(name)}
    assert len(llvm_names) > 900
    assert Counter(c.change_class for c in report.changes) == {
        ChangeClass.UNCHANGED: report.base.functions + report.base.objects
    }


# -- 8. binding and outlining ----------------------------------------------------------------


@needs_binutils
def test_functions_thinlto_made_local_are_counted(corpus: Corpus, clang_lto: DiffReport) -> None:
    def bindings(variant: str) -> dict[str, set[str]]:
        """Binding letters per name (.llvm.<hash> cut) of functions without aliases: a
        function with a global alias (sys_ni_syscall's weak compat_sys_*) stays global."""
        symbols = nm_symbols(corpus.kernel_vmlinux(variant))
        extents = Counter((address, size) for address, size, _kind, _name in symbols if size)
        found: dict[str, set[str]] = defaultdict(set)
        for address, size, kind, name in symbols:
            if size and kind in "tT" and extents[(address, size)] == 1:
                found[LLVM.sub("", name)].add(kind)
        return found

    base, new = bindings("clang-nolto"), bindings("clang-thinlto")
    once = {name for name in base if len(base[name]) == 1 and len(new.get(name, ())) == 1}
    oracle = {name for name in once if base[name] == {"T"} and new[name] == {"t"}}
    assert len(oracle) > 8000
    localized = {
        LLVM.sub("", name)
        for change in clang_lto.of_kind(SymbolKind.FUNCTION)
        if change.visibility is Visibility.LOCALIZED
        for name in change.base.names  # type: ignore[union-attr]
    }
    assert {name for name in localized if name in once} == oracle


@needs_binutils
@needs_dwarfdump
def test_functions_base_only_inlined_are_outlined(corpus: Corpus, clang_lto: DiffReport) -> None:
    base_path = corpus.kernel_vmlinux("clang-nolto")
    base_names = {LLVM.sub("", name) for *_, name in nm_symbols(base_path)}
    new_only = {
        LLVM.sub("", name)
        for _a, size, kind, name in nm_symbols(corpus.kernel_vmlinux("clang-thinlto"))
        if size and kind in "tT" and LLVM.sub("", name) not in base_names
    }
    output = subprocess.run(
        ["llvm-dwarfdump", *(f"--name={name}" for name in sorted(new_only)), str(base_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    inlined = set(
        re.findall(
            r'DW_TAG_inlined_subroutine\n\s+DW_AT_abstract_origin\t\(0x[0-9a-f]+ "([^"]+)"\)',
            output,
        )
    )
    oracle = new_only & inlined
    assert "vfs_stat" in oracle
    outlined = {c.name for c in clang_lto.of_class(ChangeClass.OUTLINED)}
    assert outlined == oracle
    for change in clang_lto.of_class(ChangeClass.OUTLINED):
        assert change.base is None and change.inlined_count_base


# -- 9. modules and architectures ------------------------------------------------------------


@needs_binutils
def test_a_module_lto_diff(corpus: Corpus, kernel_diff: Callable[..., DiffReport]) -> None:
    base = corpus.kernels / "clang-nolto" / "lkdtm.ko"
    new = corpus.kernels / "clang-thinlto" / "lkdtm.ko"
    report = kernel_diff(str(base), str(new))
    assert report.base.has_dwarf and report.new.has_dwarf
    functions = {
        fields[7]
        for line in subprocess.run(
            ["readelf", "-sW", str(base)], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if len(fields := line.split()) == 8
        and fields[3] == "FUNC"
        and fields[6].isdigit()
        and int(fields[2], 0) > 0
    }
    listed = Counter(
        name
        for change in report.of_kind(SymbolKind.FUNCTION)
        if change.base is not None
        for name in change.base.names
    )
    assert set(listed) == functions and max(listed.values()) == 1
    size_a = subprocess.run(
        ["size", "-A", str(new)], capture_output=True, text=True, check=True
    ).stdout
    total = int(next(line.split()[1] for line in size_a.splitlines() if line.startswith("Total")))
    assert sum(row.new_size or 0 for row in report.sections) == total


def test_images_of_different_architectures_are_refused(corpus: Corpus) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            str(corpus.kernel_vmlinux("clang-thinlto")),
            str(corpus.kernel_vmlinux("arm64-clang-thinlto")),
        ],
    )
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "x86_64" in result.stderr and "aarch64" in result.stderr
    module = corpus.kernels / "clang-thinlto" / "lkdtm.ko"
    result = CliRunner().invoke(
        cli, ["diff", str(corpus.kernel_vmlinux("clang-thinlto")), str(module)]
    )
    assert result.exit_code == 2 and "two vmlinux files or two modules" in result.stderr


# -- 12. bloat-o-meter's selections, CSV -----------------------------------------------------

SKIPPED = ("__mod_", "__se_sys", "__se_compat_sys", "__addressable_")


def bloat_tables(*args: str) -> list[tuple[str, list[list[str]], int, int]]:
    """(title, rows, Before, After) of each table ``ltosyms diff --format bloat-o-meter``
    prints."""
    result = CliRunner().invoke(cli, ["diff", *args, "--format", "bloat-o-meter"])
    assert result.exit_code == 0, result.output
    tables = []
    lines = result.stdout.splitlines()
    for start, line in enumerate(lines):
        if line.startswith("add/remove:"):
            end = next(i for i in range(start, len(lines)) if lines[i].startswith("Total:"))
            before, after = map(int, re.findall(r"=(\d+)", lines[end]))
            title = lines[start + 1][:40].strip()
            tables.append((title, [row.split() for row in lines[start + 2 : end]], before, after))
    return tables


@needs_binutils
def test_bloat_o_meter_selections(corpus: Corpus) -> None:
    base, new = corpus.kernel_vmlinux("clang-nolto"), corpus.kernel_vmlinux("clang-thinlto")
    categories = bloat_tables(str(base), str(new), "-c")
    assert [title for title, *_ in categories] == ["Function", "Data", "RO Data"]
    (everything,) = bloat_tables(str(base), str(new))
    (text,) = bloat_tables(str(base), str(new), "-t")
    (data,) = bloat_tables(str(base), str(new), "-d")
    assert text[1:] == categories[0][1:]
    assert data[2] == categories[1][2] + categories[2][2]
    assert everything[2] == text[2] + data[2] and everything[3] == text[3] + data[3]
    # -t: the code of BASE (readelf), less what bloat-o-meter leaves out (`__mod_timer`...).
    sections = readelf_sections(base)
    extents: dict[tuple[int, int], set[str]] = defaultdict(set)
    symtab = subprocess.run(
        ["readelf", "-sW", str(base)], capture_output=True, text=True, check=True
    ).stdout
    for line in symtab.splitlines():
        fields = line.split()
        if len(fields) == 8 and fields[6].isdigit() and int(fields[2], 0) > 0:
            flags = sections[int(fields[6])][4]
            if "A" in flags and (fields[3] == "FUNC" or (fields[3] == "NOTYPE" and "X" in flags)):
                extents[(int(fields[1], 16), int(fields[2], 0))].add(fields[7])
    skipped = sum(
        size for (_a, size), names in extents.items() if all(n.startswith(SKIPPED) for n in names)
    )
    assert skipped > 0
    assert text[2] == function_bytes(base) - skipped
    # Rows of -t are functions, rows of -d objects (nm's letters of either build).
    letters: dict[str, set[str]] = defaultdict(set)
    for path in (base, new):
        for _a, _size, kind, name in nm_symbols(path):
            letters[name].add(kind)
    for row in text[1]:
        if not row[0].endswith("]"):  # not a collection
            assert letters[row[0]] & set("tTwW"), row
    for row in data[1]:
        if not row[0].endswith("]"):
            assert letters[row[0]] & set("dDbBrRvV"), row
    # Same-named statics: a fifth column, the file, tells them apart.
    doubles = [row for row in everything[1] if len(row) == 5]
    assert doubles
    names = Counter(row[0] for row in everything[1])
    assert all(names[row[0]] > 1 for row in doubles)
    assert all(names[row[0]] == 1 for row in everything[1] if len(row) == 4)


def test_csv_has_one_row_per_change(clang_lto: DiffReport, corpus: Corpus) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "diff",
            str(corpus.kernel_vmlinux("clang-nolto")),
            str(corpus.kernel_vmlinux("clang-thinlto")),
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(clang_lto.changes)
    assert Counter(row["class"] for row in rows) == Counter(
        c.change_class.value for c in clang_lto.changes
    )
    assert sum(int(row["delta"]) for row in rows) == sum(c.delta for c in clang_lto.changes)
    vfs_stat = next(row for row in rows if row["name"] == "vfs_stat")
    assert vfs_stat["class"] == "outlined" and vfs_stat["file"] == "fs/stat.c"
    assert vfs_stat["base_size"] == "" and vfs_stat["inlined_count_base"] == "2"


# -- 10. bloat-o-meter's format reads no DWARF unless asked ----------------------------------


def test_bloat_o_meter_format_reads_no_dwarf_unless_asked(
    corpus: Corpus, caplog: pytest.LogCaptureFixture
) -> None:
    pair = [str(corpus.kernel_vmlinux("clang-nolto")), str(corpus.kernel_vmlinux("clang-thinlto"))]
    caplog.set_level(logging.INFO, logger="ltosyms")
    for extra, reads_dwarf in (([], False), (["--dwarf"], True)):
        caplog.clear()
        # --no-cache: a census the index keeps is not taken again, whatever it read.
        command = ["diff", *pair, "--no-cache", "--format", "bloat-o-meter", *extra]
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 0
        censuses = [r for r in caplog.records if "DWARF census in" in r.getMessage()]
        assert len(censuses) == (2 if reads_dwarf else 0)
