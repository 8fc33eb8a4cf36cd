"""The DWARF resolver against the corpus oracles: every agreed frame, vmlinux and modules.

The expected records (``expected/frames.json``) hold what llvm-symbolizer, addr2line and drgn
say at each frame's lookup address. Where they agree (``oracle_class`` ``agree``), our chain
must equal theirs in function names, files and lines; for ``asm-name`` records (assembly, named
differently by each tool) in files and lines. Full paths must equal what the tools print, and
relative paths what users expect once the build prefix is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import SMALL_KERNELS, Corpus, elffile, llvm_symbolizer

from ltosyms.context import ImageContext
from ltosyms.context.build import dwarf_codec
from ltosyms.dwarf import CuData, CuMap, DwarfResolver, SourceLocation, UnitParser
from ltosyms.dwarf import forms as F
from ltosyms.dwarf.info import DieReader
from ltosyms.dwarf.line import read_line_table
from ltosyms.elf.debug_sections import dwarf_resolver, dwarf_sections
from ltosyms.elf.image import KernelImage, open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.index import Answers, CacheLocation, kinds, open_store
from ltosyms.index.store import row_checksum
from ltosyms.stores import MemoryMemo

# Build prefixes of the corpus kernels (corpus READMEs): oracle paths carry them, users
# should not see them.
BUILD_PREFIXES = (
    "debian/build/build_amd64_none_cloud-amd64/",  # Debian: DW_AT_comp_dir, relative
    "/build/reproducible-path/linux-6.1.192/",  # Debian assembly units: absolute source tree
    "/build/lb/kernels/src/linux-source-6.1/",  # corpus kernels: source tree (make O=...)
    "/build/k612/src/linux-source-6.12/",  # clang-thinlto-6.12
    "/build/gcclto01/src/linux-source-6.1/",  # gcc-lto
)


def relative(path: str) -> str:
    for prefix in BUILD_PREFIXES:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


Entry = tuple[str | None, str | None, str | None, int | None]


def expected_chain(record: dict[str, Any]) -> list[Entry]:
    names = record["oracle_class"] != "asm-name"
    return [
        (
            entry["function"] or None if names else None,
            relative(entry["file"]),
            entry["file"],
            entry["line"] or None,
        )
        for entry in record["oracle"]
    ]


def our_chain(
    locations: tuple[SourceLocation, ...], record: dict[str, Any], outer_from_dwarf: bool = False
) -> list[Entry]:
    names = record["oracle_class"] != "asm-name"
    chain = []
    for depth, location in enumerate(locations):
        function = location.function
        if outer_from_dwarf and depth == len(locations) - 1 and location.dwarf_function:
            function = location.dwarf_function
        chain.append(
            (function if names else None, location.file, location.full_path, location.line)
        )
    return chain


@dataclass
class Score:
    matched: int = 0
    differences: list[str] | None = None

    def check(self, kernel: str) -> None:
        # Every frame the oracles agree on: one regression is one failure.
        differences = self.differences or []
        total = self.matched + len(differences)
        assert total > 0, f"{kernel}: no agreed frames to check"
        assert differences == [], (
            f"{kernel}: {self.matched}/{total} frames agree; differences:\n"
            + "\n".join(differences[:30])
        )


def judged(records: list[dict[str, Any]], modules: bool) -> list[dict[str, Any]]:
    return [
        r
        for r in records
        if r["oracle_class"] in ("agree", "asm-name") and bool(r["module"]) == modules
    ]


def kernel_paths(corpus: Corpus, kernel: str) -> tuple[Path, Path]:
    if kernel == "debian":
        return corpus.debian_vmlinux(), corpus.debian
    return corpus.kernel_vmlinux(kernel), corpus.kernels / kernel


KERNELS = ("debian", *SMALL_KERNELS)


@pytest.fixture(scope="module")
def opened(corpus: Corpus) -> dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]]:
    cache: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]] = {}
    for kernel in KERNELS:
        path, folder = kernel_paths(corpus, kernel)
        image = open_image(path)
        records = json.loads((folder / "expected" / "frames.json").read_text())
        cache[kernel] = (image, SymbolTable(image), records)
    return cache


@pytest.mark.parametrize("kernel", KERNELS)
def test_vmlinux_frames_match_the_oracles(
    opened: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]], kernel: str
) -> None:
    image, symbols, records = opened[kernel]
    resolver = dwarf_resolver(image, symbols=symbols)
    score = Score(differences=[])
    for record in judged(records, modules=False):
        address = int(record["lookup_address"], 16)
        got = our_chain(resolver.locations(address), record)
        if got == expected_chain(record):
            score.matched += 1
        else:
            assert score.differences is not None
            score.differences.append(
                f"{record['raw_line'].strip()} @ {address:#x}: {got} != {expected_chain(record)}"
            )
    score.check(kernel)
    # A sysrq-t log touches tens of units, not the image: the resolver stays lazy.
    assert resolver.parsed_units < 100


@pytest.mark.parametrize("kernel", KERNELS)
def test_module_frames_match_the_oracles(
    corpus: Corpus,
    opened: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]],
    kernel: str,
) -> None:
    _image, _symbols, records = opened[kernel]
    _path, folder = kernel_paths(corpus, kernel)
    modules: dict[str, tuple[SymbolTable, DwarfResolver]] = {}
    score = Score(differences=[])
    for record in judged(records, modules=True):
        ko = (
            folder / "modules" / f"{record['module']}.ko"
            if kernel == "debian"
            else folder / "lkdtm.ko"
        )
        if record["module"] not in modules:
            module = open_image(ko)
            table = SymbolTable(module)
            modules[record["module"]] = (table, dwarf_resolver(module, symbols=table))
        table, resolver = modules[record["module"]]
        name = record.get("elf_name") or record["symbol"]
        section = record.get("section")
        candidates = [s for s in table.by_name(name) if section is None or s.section == section]
        assert len(candidates) == 1, f"{name} in {ko.name}: {candidates}"
        # The oracle's own addresses differ from ours; the offset from the symbol does not
        # (it already holds the -1 / -4 of return frames).
        delta = int(record["lookup_address"], 16) - int(record["symbol_address"], 16)
        address = candidates[0].link_address + delta
        # Debian module oracles are addr2line -j (DWARF names the outer frame: bfd takes the
        # symbol's name only when it starts at the DWARF function, which it never does in an
        # ET_REL file); the corpus kernels' are llvm-symbolizer on the linked module.
        outer_from_dwarf = not record.get("oracle_linked_module")
        got = our_chain(resolver.locations(address), record, outer_from_dwarf)
        if got == expected_chain(record):
            score.matched += 1
        else:
            assert score.differences is not None
            score.differences.append(
                f"{record['raw_line'].strip()}: {got} != {expected_chain(record)}"
            )
    score.check(f"{kernel} modules")


def _indexed(image: KernelImage, location: CacheLocation) -> Answers:
    store = open_store(image, location, cu_format=kinds.UNIT_FORMAT)
    assert store is not None
    return Answers(store, image)


def _kept_in(
    image: KernelImage, answers: Answers, symbols: SymbolTable | None = None
) -> DwarfResolver:
    """A resolver whose units and unit map the index keeps."""
    return dwarf_resolver(
        image,
        symbols,
        units=answers.memo(kinds.UNITS),
        unit_map=answers.memo(kinds.UNIT_MAP),
    )


def test_index_round_trip_gives_the_same_answers_without_parsing(
    opened: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]], tmp_path: Path
) -> None:
    image, symbols, records = opened["clang-thinlto"]
    addresses = sorted({int(r["lookup_address"], 16) for r in records if not r["module"]})
    location = CacheLocation(directory=tmp_path)
    answers = _indexed(image, location)
    cold = _kept_in(image, answers, symbols)
    chains = cold.locations_many(addresses)
    assert cold.parsed_units > 10 and cold.loaded_units == 0
    answers.close()
    answers = _indexed(image, location)
    assert answers.get(kinds.UNIT_MAP, None) == cold.cu_map
    warm = _kept_in(image, answers, symbols)
    assert warm.locations_many(addresses) == chains
    assert warm.parsed_units == 0 and warm.loaded_units == cold.parsed_units
    # The warm resolver never opened the DWARF sections.
    assert not warm.dwarf_opened
    answers.close()
    # Memos of the process keep units for the life of the process the same way.
    units: MemoryMemo[int, CuData] = MemoryMemo()
    first = dwarf_resolver(image, symbols, units=units)
    first.locations_many(addresses)
    again = dwarf_resolver(image, symbols, units=units)
    assert again.locations_many(addresses) == chains
    assert again.parsed_units == 0 and again.loaded_units == first.parsed_units


def test_damaged_stored_units_are_parsed_again_and_replaced(
    opened: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    image, _symbols, records = opened["gcc-nolto"]
    address = int(next(r for r in records if not r["module"] and r["oracle"])["lookup_address"], 16)
    reference = dwarf_resolver(image).locations(address)
    location = CacheLocation(directory=tmp_path)
    answers = _indexed(image, location)
    first = _kept_in(image, answers)
    unit = first.cu_for(address)
    assert unit is not None
    first.locations(address)
    answers.close()
    # Bytes that pass their checksum but are no unit and no map (a buggy or hostile writer).
    garbage = b"\x00garbage"
    with contextlib.closing(sqlite3.connect(answers.store.path)) as connection, connection:
        connection.execute(
            "UPDATE cu SET crc32 = ?, data = ? WHERE cu_offset = ?",
            (zlib.crc32(garbage), zlib.compress(garbage), unit),
        )
        connection.create_function("row_checksum", 3, row_checksum, deterministic=True)
        connection.execute(
            "UPDATE derived SET data = ?1, crc32 = row_checksum(kind, key, ?1) WHERE kind = ?2",
            (garbage, kinds.UNIT_MAP.stored_name),
        )
    answers = _indexed(image, location)
    second = _kept_in(image, answers)
    assert second.locations(address) == reference
    assert second.parsed_units == 1
    assert "does not decode" in caplog.text
    answers.close()
    answers = _indexed(image, location)
    third = _kept_in(image, answers)
    assert third.locations(address) == reference
    assert (third.parsed_units, third.loaded_units) == (0, 1)  # replaced by the parsed one
    assert not third.dwarf_opened
    answers.close()


def test_worker_entry_points_produce_loadable_records(
    opened: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]],
) -> None:
    image, _symbols, records = opened["clang-nolto"]
    codec = dwarf_codec()
    offsets = list(codec.unit_offsets(ImageContext(image=image)))
    assert offsets == sorted(offsets) and len(offsets) > 100
    address = int(next(r for r in records if not r["module"] and r["oracle"])["lookup_address"], 16)
    resolver = dwarf_resolver(image)
    unit = resolver.cu_for(address)
    assert unit in offsets
    data = kinds.UNITS.decode(codec.parse_cu(image, unit), image)
    assert data.locations(address) == resolver.locations(address)
    unit_map: MemoryMemo[None, CuMap] = MemoryMemo()
    unit_map.put(None, UnitParser(dwarf_sections(image)).unit_map())
    assert dwarf_resolver(image, unit_map=unit_map).cu_for(address) == unit


def test_clang_unit_map_covers_every_function_symbol(
    opened: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]],
) -> None:
    # clang emits .debug_aranges only for assembly units: every other unit comes from its top
    # DIE. Every FUNC symbol with a size in .text must land in some unit, except static call
    # trampolines (``__SCT__*``, ``__static_call_return``), emitted by inline assembly
    # (arch/x86/include/asm/static_call.h) that no unit claims.
    image, symbols, _records = opened["clang-thinlto"]
    resolver = dwarf_resolver(image)
    text = image.get_section(".text")
    assert text is not None
    functions = [
        s
        for s in symbols
        if s.type == "FUNC"
        and s.elf_size
        and s.section == ".text"
        and not s.name.startswith(("__SCT__", "__static_call"))
    ]
    missing = [s.name for s in functions if resolver.cu_for(s.link_address) is None]
    assert len(functions) > 5000
    assert missing == []


def test_debian_sysrq_log_cost(corpus: Corpus) -> None:
    # Issue 5's workload: the unique lookup addresses of console-sysrq.log touch ~50 units of
    # the 2,172; nothing else is parsed (bench/bench_dwarf.py measures time and memory).
    records = json.loads((corpus.debian / "expected" / "frames.json").read_text())
    addresses = {
        int(r["lookup_address"], 16)
        for r in records
        if not r["module"] and r["log"] == "console-sysrq.log"
    }
    with open_image(corpus.debian_vmlinux()) as image:
        units: MemoryMemo[int, CuData] = MemoryMemo()
        resolver = dwarf_resolver(image, units=units)
        found = resolver.locations_many(addresses)
        assert len(found) == len(addresses) == 114
        assert 40 <= resolver.parsed_units <= 60
        assert sum(1 for chain in found.values() if chain) >= 110
        # Stored form stays compact: a whole-image index must fit on disk comfortably.
        stored = sum(len(kinds.UNITS.encode(unit)) for unit in units.records.values())
        assert stored < 150_000 * resolver.parsed_units


# -- cross-checks with pyelftools on real units ---------------------------------------------


def pyelftools_unit(image: KernelImage, unit_offset: int) -> tuple[Any, Any]:
    dwarf = elffile(image.path).get_dwarf_info(relocate_dwarf_sections=image.is_module)
    return dwarf, dwarf.get_CU_at(unit_offset)


def die_name(die: Any) -> str | None:
    for _ in range(8):
        for attribute in ("DW_AT_name", "DW_AT_linkage_name"):
            if attribute in die.attributes:
                return str(die.attributes[attribute].value.decode())
        for attribute in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if attribute in die.attributes:
                die = die.get_DIE_from_attribute(attribute)
                break
        else:
            return None
    return None


def die_declaration(die: Any) -> tuple[int, int] | None:
    """DW_AT_decl_file and DW_AT_decl_line of a subprogram, through its abstract origin or
    specification in the same unit (None: not declared there)."""
    for _ in range(8):
        if "DW_AT_decl_file" in die.attributes:
            line = die.attributes.get("DW_AT_decl_line")
            return die.attributes["DW_AT_decl_file"].value, line.value if line else 0
        for attribute in ("DW_AT_abstract_origin", "DW_AT_specification"):
            if attribute in die.attributes:
                origin = die.get_DIE_from_attribute(attribute)
                if origin.cu.cu_offset != die.cu.cu_offset:
                    return None
                die = origin
                break
        else:
            return None
    return None


def declared_file_name(program: Any, decl_file: int) -> str:
    """The base name of file ``decl_file`` of a unit's line program (DWARF 5 numbers files
    from 0, earlier versions from 1)."""
    entries = program.header.file_entry
    entry = entries[decl_file] if program.header.version >= 5 else entries[decl_file - 1]
    return os.path.basename(entry.name.decode())


def outermost_frames(image: Path, addresses: list[int]) -> dict[int, tuple[str, int]]:
    """llvm-symbolizer's outermost (not inlined) frame at each address: the base name of its
    file and its line."""
    return {
        address: (os.path.basename(chain[-1][1] or ""), chain[-1][2] or 0)
        for address, chain in llvm_symbolizer(image, addresses).items()
        if chain
    }


Row = tuple[int, int, int, int, bool]  # address, file, line, column, end of sequence


def pyelftools_answers(
    dwarf: Any, unit: Any, lowest: int, highest: int
) -> tuple[dict[int, tuple[int, int, int]], int]:
    """(file, line, column) at every address where a row of the unit's line program starts,
    as pyelftools decodes it: the last row at an address wins (as in llvm) and an
    end_sequence row ends the answer there. Sequences that start or end outside the image's
    code [lowest, highest] are the linker's discarded code, which ltosyms drops: left out, and
    counted (the second value)."""
    program = dwarf.line_program_for_CU(unit)
    sequences: list[list[Row]] = []
    rows: list[Row] = []
    for entry in program.get_entries() if program is not None else ():
        state = entry.state
        if state is None:
            continue
        rows.append((state.address, state.file, state.line, state.column, state.end_sequence))
        if state.end_sequence:
            sequences.append(rows)
            rows = []
    answers: dict[int, tuple[int, int, int]] = {}
    dropped = 0
    for sequence in sequences:
        if not lowest <= sequence[0][0] < sequence[-1][0] <= highest:
            dropped += 1
            continue
        for address, file, line, column, end_of_sequence in sequence:
            if end_of_sequence:
                answers.pop(address, None)
            else:
                answers[address] = (file, line, column)
    return answers, dropped


def small_units(resolver: DwarfResolver, count: int) -> list[int]:
    """A few units of modest size spread over the image (pyelftools is slow on big ones)."""
    offsets = resolver.unit_offsets()
    reader = resolver.parser.reader
    sized = [(reader.header(o).end - o, o) for o in offsets]
    chosen = [o for size, o in sized if 3_000 < size < 60_000]
    step = max(len(chosen) // count, 1)
    return chosen[::step][:count]


@pytest.mark.parametrize(
    "kernel", ["gcc-nolto", "clang-thinlto", "arm64-clang-thinlto", "clang-thinlto-6.12", "gcc-lto"]
)
def test_units_agree_with_pyelftools(
    opened: dict[str, tuple[KernelImage, SymbolTable, list[dict[str, Any]]]], kernel: str
) -> None:
    image, _symbols, _records = opened[kernel]
    resolver = dwarf_resolver(image)
    functions: list[tuple[int, str, int, list[int]]] = []  # low, declaring file, line, rows
    for unit_offset in small_units(resolver, 3):
        data = resolver.cu_data(unit_offset)
        dwarf, unit = pyelftools_unit(image, unit_offset)
        # Every row pyelftools decodes answers the same at its own address, through the
        # unit's stored tables (file numbers kept beside the dense file list).
        sections = resolver.parser.sections
        answers, _dropped = pyelftools_answers(
            dwarf, unit, sections.lowest_address, sections.highest_address
        )
        mismatched = [
            address
            for address, answer in answers.items()
            if (
                None
                if (row := data.line_row(address)) is None
                else (
                    data.file_numbers[data.row_files[row]],
                    data.row_lines[row],
                    data.row_columns[row],
                )
            )
            != answer
        ]
        assert answers and mismatched == [], (
            f"unit {unit_offset:#x}: rows differ at {mismatched[:5]}"
        )
        # Every subprogram with code: same name and ranges.
        for die in unit.iter_DIEs():
            if die.tag != "DW_TAG_subprogram" or "DW_AT_low_pc" not in die.attributes:
                continue
            if "DW_AT_high_pc" not in die.attributes:
                continue
            low = die.attributes["DW_AT_low_pc"].value
            high = die.attributes["DW_AT_high_pc"].value
            if die.attributes["DW_AT_high_pc"].form != "DW_FORM_addr":
                high += low
            if low < resolver.parser.sections.lowest_address or high <= low:
                continue
            extent = data.function_extent(low)
            assert extent is not None, f"{die_name(die)} at {low:#x}"
            assert extent.name == die_name(die)
            assert extent.ranges == ((low, high),)
            declared = die_declaration(die)
            if declared is not None:
                decl_file, decl_line = declared
                rows = sorted(address for address in answers if low <= address < high)
                file_name = declared_file_name(dwarf.line_program_for_CU(unit), decl_file)
                functions.append((low, file_name, decl_line, rows))
    # The lines each function spans in its declaring file: its declaration line and, at each
    # of its rows, the line llvm-symbolizer gives its outermost (not inlined) frame there.
    outer = outermost_frames(
        image.path, [a for _low, _name, _line, rows in functions for a in rows]
    )
    checked = 0
    for low, file_name, decl_line, rows in functions:
        lines = [
            line
            for a in rows
            if (place := outer.get(a, ("", 0)))[0] == file_name and (line := place[1])
        ]
        lines += [decl_line] if decl_line else []
        spanned = resolver.function_lines(low)
        ours = (spanned.first, spanned.last) if spanned is not None else None
        assert ours == ((min(lines), max(lines)) if lines else None), f"function at {low:#x}"
        checked += ours is not None
    assert checked > 0


def test_module_dwarf_is_relocated_per_section(corpus: Corpus) -> None:
    # clang LTO modules put each function in its own .text.<name> section at offset 0: only
    # relocating with each section's own address keeps their DWARF apart
    # (docs/kernel-facts.md#kaslr-and-modules).
    for variant in ("clang-thinlto", "arm64-clang-thinlto"):
        module = open_image(corpus.kernels / variant / "lkdtm.ko")
        table = SymbolTable(module)
        resolver = dwarf_resolver(module)
        checked = 0
        for unit_offset in resolver.unit_offsets():
            for extent in resolver.functions(unit_offset):
                symbols = [s for s in table.by_name(extent.name or "") if s.is_function]
                if len(symbols) == 1:
                    assert extent.entry_address == symbols[0].link_address, extent.name
                    checked += 1
        assert checked > 50, variant


# -- every unit of every small kernel against pyelftools (slow) ------------------------------

# pyelftools decodes the line programs of one small kernel in 13-25 s (ltosyms: 1-2 s) and
# reads about 60,000 DIEs a second: every DIE of a kernel (several million) would take minutes
# per kernel, longer than the whole test suite may take. So every unit's line program is
# compared, and the DIE trees of every DIE_SAMPLE-th unit in .debug_info order (70 units,
# 250,000 DIEs of clang-thinlto).
DIE_SAMPLE = 25


@pytest.mark.slow
@pytest.mark.parametrize("kernel", SMALL_KERNELS)
def test_every_unit_agrees_with_pyelftools(corpus: Corpus, kernel: str) -> None:
    """Line programs of every unit: at every address where a row of pyelftools' decoding
    starts, our rows give its file, line and column (the last row at an address wins, as in
    llvm; a sequence that starts or ends outside the image's code is the linker's discarded
    code, which we drop). DIE trees of every DIE_SAMPLE-th unit: every subprogram with code
    (low_pc/high_pc) has our name and range, and every inlined subroutine with code is in our
    inline chain at its first address."""
    image = open_image(corpus.kernel_vmlinux(kernel))
    sections = dwarf_sections(image)
    reader = DieReader(sections)
    resolver = dwarf_resolver(image)
    lowest, highest = sections.lowest_address, sections.highest_address
    dwarf = elffile(image.path).get_dwarf_info(relocate_dwarf_sections=False)
    units = list(dwarf.iter_CUs())
    assert [unit.cu_offset for unit in units] == reader.index.offsets
    compared = dropped = 0
    differing: list[str] = []
    for unit in units:
        ours = reader.unit(unit.cu_offset)
        statement_list = ours.top_constant(F.AT_STMT_LIST)
        if statement_list is None:
            assert dwarf.line_program_for_CU(unit) is None
            continue
        rows = read_line_table(
            sections,
            statement_list,
            ours,
            ours.top_string(F.AT_COMP_DIR),
            ours.header.address_size,
        ).rows
        answers, dropped_here = pyelftools_answers(dwarf, unit, lowest, highest)
        dropped += dropped_here
        compared += len(answers)
        differing += [
            f"unit {unit.cu_offset:#x} at {address:#x}: {rows.row_at(address)} != {answer}"
            for address, answer in answers.items()
            if rows.row_at(address) != answer
        ]
    assert differing == []
    assert compared > 100_000
    code_units = set(resolver.unit_offsets())
    subprograms = inlined = 0
    for unit in units[::DIE_SAMPLE]:
        if unit.cu_offset not in code_units:
            continue
        data = resolver.cu_data(unit.cu_offset)
        for die in unit.iter_DIEs():
            if die.tag not in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine"):
                continue
            attributes = die.attributes
            if "DW_AT_low_pc" not in attributes or "DW_AT_high_pc" not in attributes:
                continue
            low = attributes["DW_AT_low_pc"].value
            high = attributes["DW_AT_high_pc"].value
            if attributes["DW_AT_high_pc"].form != "DW_FORM_addr":
                high += low
            if not lowest <= low < high <= highest:
                continue
            where = f"unit {unit.cu_offset:#x}: {die.tag} at {low:#x}"
            if die.tag == "DW_TAG_subprogram":
                subprograms += 1
                extent = data.function_extent(low)
                assert extent is not None, where
                assert (extent.name, extent.ranges) == (die_name(die), ((low, high),)), where
            else:
                inlined += 1
                chain = data.inline_chain(low)
                assert die_name(die) in [data.names[node] for node in chain], where
    assert subprograms > 300 and inlined > 1000
