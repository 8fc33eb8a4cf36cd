"""Build a :class:`CuData` from one unit: line program + function tree + names + paths."""

from __future__ import annotations

import posixpath
from array import array
from dataclasses import dataclass, field

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.extract import FUNCTION_LAYOUT
from ltosyms.dwarf.info import DieReader
from ltosyms.dwarf.line import (
    FileTable,
    LineRows,
    read_line_header,
    read_line_table,
)
from ltosyms.dwarf.paths import relative_path
from ltosyms.dwarf.ranges import Range, RangeReader
from ltosyms.dwarf.unit_tables import END_OF_SEQUENCE, NO_FILE, CuData, narrow
from ltosyms.dwarf.units import Unit
from ltosyms.dwarf.walk import FoundDies

_EMPTY_ROWS = LineRows(addresses=array("Q"), files=array("I"), lines=array("I"), columns=array("I"))
_NONE = -1  # no file / no value in the raw columns below
_LIMIT = 1 << 32  # file numbers, lines and columns past 32 bits are damage: none

# A file as the functions name it: a file number of this unit's line table, or
# (unit offset, file number) for a function declared in another unit (LTO).
FileKey = int | tuple[int, int]


def unit_range_reader(reader: DieReader, unit: Unit) -> RangeReader:
    header = unit.header
    return RangeReader(
        reader.sections,
        version=header.version,
        address_size=header.address_size,
        offset_size=header.offset_size,
        base_address=unit.top_address(F.AT_LOW_PC) or 0,
        rnglists_base=unit.rnglists_base,
        addrx=unit.addrx,
    )


def unit_code_ranges(reader: DieReader, unit: Unit) -> list[Range]:
    """The code ranges of a unit from its top DIE (DW_AT_ranges, or low_pc/high_pc)."""
    sections = reader.sections
    lowest, highest = sections.lowest_address, sections.highest_address
    ranges: list[Range] = []
    ranges_value = unit.top_constant(F.AT_RANGES)
    if ranges_value is not None:
        is_index = unit.top[F.AT_RANGES][0] == F.FORM_RNGLISTX
        ranges = unit_range_reader(reader, unit).ranges_of(ranges_value, is_index)
    else:
        low = unit.top_address(F.AT_LOW_PC)
        high = unit.top_constant(F.AT_HIGH_PC)
        if low is not None and high is not None:
            form = unit.top[F.AT_HIGH_PC][0]
            if form in F.CONSTANT_FORMS:
                ranges = [(low, low + high)]
            elif form in F.ADDRX_FORMS:
                ranges = [(low, unit.addrx(high) or low)]
            else:
                ranges = [(low, high)]
    return [(low, high) for low, high in ranges if lowest <= low < high <= highest]


def build_cu_data(reader: DieReader, unit_offset: int) -> CuData:
    """Parse everything the resolver keeps from the unit at ``unit_offset``."""
    sections = reader.sections
    unit, raw = reader.unit_dies(unit_offset)
    header = unit.header
    comp_dir = unit.top_string(F.AT_COMP_DIR)
    producer = unit.top_string(F.AT_PRODUCER) or ""

    rows = _EMPTY_ROWS
    files: FileTable | None = None
    statement_list = unit.top_constant(F.AT_STMT_LIST)
    if statement_list is not None and sections.has(".debug_line"):
        table = read_line_table(sections, statement_list, unit, comp_dir, header.address_size)
        rows, files = table.rows, table.files

    inlined = [tag == F.TAG_INLINED_SUBROUTINE for tag in raw.tags]
    tree = _function_tree(reader, unit, raw, inlined)

    # Keep only the files something names, numbered densely from 1 (0: none / end of
    # sequence). gcc's file tables list every included header; rows name a few dozen.
    paths = _Paths(reader, files)
    dense_rows = {END_OF_SEQUENCE: NO_FILE}
    for number in sorted(set(rows.files)):
        if number != END_OF_SEQUENCE:
            dense_rows[number] = paths.index(number)
    row_files = [dense_rows[number] for number in rows.files]
    known, index = paths.dense, paths.index
    call_files = [
        NO_FILE if key == _NONE else known.get(key) or index(key) for key in tree.call_files
    ]
    decl_files = [
        NO_FILE if key == _NONE else known.get(key) or index(key) for key in tree.decl_files
    ]

    lows = [r[0] for r in tree.roots]
    base = min(
        rows.addresses[0] if rows.addresses else 1 << 64, min(tree.range_lows, default=1 << 64)
    )
    if base == 1 << 64:
        base = 0
    return CuData(
        cu_offset=unit_offset,
        name=unit.top_string(F.AT_NAME),
        comp_dir=comp_dir,
        producer_is_clang="clang" in producer,
        address_base=base,
        full_paths=tuple(paths.full),
        relative_paths=tuple(paths.relative),
        file_numbers=tuple(paths.numbers),
        row_addresses=narrow([address - base for address in rows.addresses]),
        row_files=narrow(row_files),
        row_lines=narrow(rows.lines),
        row_columns=narrow(rows.columns),
        names=tuple(tree.names),
        parents=narrow([parent + 1 for parent in raw.parents]),
        ends=narrow(_subtree_ends(raw.parents)),
        inlined=array("B", inlined),
        call_files=narrow(call_files),
        call_lines=narrow(tree.call_lines),
        call_columns=narrow(tree.call_columns),
        decl_files=narrow(decl_files),
        decl_lines=narrow(tree.decl_lines),
        range_starts=narrow(tree.range_starts),
        range_lows=narrow([low - base for low in tree.range_lows]),
        range_highs=narrow([high - base for high in tree.range_highs]),
        root_lows=narrow([low - base for low in lows]),
        root_highs=narrow([r[1] - base for r in tree.roots]),
        root_nodes=narrow([r[2] for r in tree.roots]),
    )


class _Paths:
    """The dense file list of a :class:`CuData`, filled as files are named."""

    def __init__(self, reader: DieReader, files: FileTable | None) -> None:
        self.reader = reader
        self.files = files
        self.full: list[str | None] = [None]
        self.relative: list[str | None] = [None]
        self.numbers: list[int] = [-1]
        self.dense: dict[FileKey, int] = {}  # dense indexes start at 1
        self._roots: tuple[str, ...] | None = None
        self._foreign: dict[int, FileTable | None] = {}

    def index(self, key: FileKey) -> int:
        dense = self.dense.get(key)
        if dense is not None:
            return dense
        if isinstance(key, int):
            table = self.files
            number = key
            if table is not None and self._roots is None:
                self._roots = table.roots()
            roots = self._roots or ()
        else:
            unit_offset, number = key
            table = self._foreign_table(unit_offset)
            roots = table.roots() if table is not None else ()
        full = table.path(number) if table is not None else None
        self.full.append(full)
        self.relative.append(
            relative_path(posixpath.normpath(full), roots) if full is not None else None
        )
        self.numbers.append(number if isinstance(key, int) else -1)
        dense = self.dense[key] = len(self.full) - 1
        return dense

    def _foreign_table(self, unit_offset: int) -> FileTable | None:
        if unit_offset not in self._foreign:
            unit = self.reader.unit(unit_offset)
            statement_list = unit.top_constant(F.AT_STMT_LIST)
            table = None
            if statement_list is not None:
                table = read_line_header(
                    self.reader.sections,
                    statement_list,
                    unit,
                    unit.top_string(F.AT_COMP_DIR),
                    unit.header.address_size,
                )
            self._foreign[unit_offset] = table
        return self._foreign[unit_offset]


@dataclass(slots=True)
class _Tree:
    names: list[str | None] = field(default_factory=list)
    call_files: list[int] = field(default_factory=list)  # file numbers, _NONE
    call_lines: list[int] = field(default_factory=list)
    call_columns: list[int] = field(default_factory=list)
    decl_files: list[FileKey] = field(default_factory=list)  # _NONE for none
    decl_lines: list[int] = field(default_factory=list)
    range_starts: list[int] = field(default_factory=list)
    range_lows: list[int] = field(default_factory=list)
    range_highs: list[int] = field(default_factory=list)
    roots: list[tuple[int, int, int]] = field(default_factory=list)


# Positions of the fields the function tree reads of each function DIE (FunctionValues).
_LOW_PC = FUNCTION_LAYOUT.index["low_pc"]
_HIGH_PC = FUNCTION_LAYOUT.index["high_pc"]
_HIGH_IS_OFFSET = FUNCTION_LAYOUT.index["high_is_offset"]
_RANGES = FUNCTION_LAYOUT.index["ranges"]
_RANGES_IS_INDEX = FUNCTION_LAYOUT.index["ranges_is_index"]
_NAME = FUNCTION_LAYOUT.index["name"]
_LINKAGE_NAME = FUNCTION_LAYOUT.index["linkage_name"]
_ORIGIN = FUNCTION_LAYOUT.index["origin"]
_CALL_FILE = FUNCTION_LAYOUT.index["call_file"]
_CALL_LINE = FUNCTION_LAYOUT.index["call_line"]
_CALL_COLUMN = FUNCTION_LAYOUT.index["call_column"]


def _function_tree(
    reader: DieReader, unit: Unit, raw: FoundDies, inlined_flags: list[bool]
) -> _Tree:
    """Ranges, names, call sites and declarations of the function DIEs, as columns.

    Long because it is a per-DIE loop kept flat: a big unit has 40,000 function DIEs."""
    header = unit.header
    sections = reader.sections
    lowest, highest = sections.lowest_address, sections.highest_address
    ranges_of = unit_range_reader(reader, unit).ranges_of
    name_of = reader.name_of
    subprograms = raw.subprograms
    tree = _Tree()
    lows, highs, starts, roots = tree.range_lows, tree.range_highs, tree.range_starts, tree.roots
    names = tree.names
    call_files, call_lines, call_columns = tree.call_files, tree.call_lines, tree.call_columns
    decl_files, decl_lines = tree.decl_files, tree.decl_lines
    # Inlined copies of a function share its abstract origin: name each origin once.
    origin_names: dict[int, str | None] = {}
    add_start, add_low, add_high, add_root = starts.append, lows.append, highs.append, roots.append
    for node, (values, inlined) in enumerate(zip(raw.values, inlined_flags, strict=True)):
        add_start(len(lows))
        low = values[_LOW_PC]
        high = values[_HIGH_PC]
        if low is not None and high is not None:
            if values[_HIGH_IS_OFFSET]:
                high += low
            if lowest <= low < high <= highest:
                add_low(low)
                add_high(high)
                if not inlined:
                    add_root((low, high, node))
        elif values[_RANGES] is not None:
            for start, end in ranges_of(values[_RANGES], values[_RANGES_IS_INDEX]):
                if lowest <= start < end <= highest:
                    add_low(start)
                    add_high(end)
                    if not inlined:
                        add_root((start, end, node))
        origin = values[_ORIGIN]
        if values[_NAME] is None and values[_LINKAGE_NAME] is None and origin is not None:
            if origin in origin_names:
                function_name = origin_names[origin]
            else:
                function_name = origin_names[origin] = name_of(values, subprograms)[0]
        else:
            function_name = name_of(values, subprograms)[0]
        names.append(function_name)
        if inlined:
            # Constants from the extractor (an int, negative from DW_FORM_sdata or past 32
            # bits in bad data, or None), checked inline as _count would: a call costs more.
            value = values[_CALL_FILE]
            call_files.append(value if value is not None and 0 <= value < _LIMIT else _NONE)
            value = values[_CALL_LINE]
            call_lines.append(value if value is not None and 0 <= value < _LIMIT else 0)
            value = values[_CALL_COLUMN]
            call_columns.append(value if value is not None and 0 <= value < _LIMIT else 0)
            decl_files.append(_NONE)
            decl_lines.append(0)
            continue
        call_files.append(_NONE)
        call_lines.append(0)
        call_columns.append(0)
        decl_file, decl_line, holder = reader.declaration_of(values, subprograms)
        decl_lines.append(_count(decl_line, 0))
        number = _count(decl_file, _NONE)
        if number == _NONE or holder is None or header.offset <= holder < header.end:
            decl_files.append(number)
        else:
            decl_files.append((reader.index.unit_containing(holder), number))
    starts.append(len(lows))
    roots.sort()
    return tree


def _count(value: object, default: int) -> int:
    """A file number, line or column from DWARF, or ``default`` if absent or not one."""
    return value if isinstance(value, int) and 0 <= value < _LIMIT else default


def _subtree_ends(parents: list[int]) -> list[int]:
    """End (exclusive) of each node's subtree in preorder, from the parent links."""
    ends = list(range(1, len(parents) + 1))
    for node in range(len(parents) - 1, -1, -1):
        parent = parents[node]
        if parent >= 0 and ends[node] > ends[parent]:
            ends[parent] = ends[node]
    return ends
