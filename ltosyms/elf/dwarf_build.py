"""Build a :class:`CuData` from one unit: line program + function tree + names + paths."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from ltosyms.elf import dwarf_forms as F
from ltosyms.elf.dwarf_codegen import (
    V_CALL_COLUMN,
    V_CALL_FILE,
    V_CALL_LINE,
    V_HIGH_IS_OFFSET,
    V_HIGH_PC,
    V_LOW_PC,
    V_NAME,
    V_ORIGIN,
    V_RANGES,
    V_RANGES_IS_INDEX,
)
from ltosyms.elf.dwarf_cudata import NO_VALUE, CuData
from ltosyms.elf.dwarf_info import DieReader, RawFunctions, walk_unit
from ltosyms.elf.dwarf_line import LineRows, read_line_header, read_line_table
from ltosyms.elf.dwarf_paths import relative_path, source_roots
from ltosyms.elf.dwarf_ranges import Range, RangeReader
from ltosyms.elf.dwarf_units import Unit

_EMPTY_ROWS = LineRows(array("Q"), array("I"), array("I"), array("I"))


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
    entry = unit.top.get(F.AT_RANGES)
    if entry is not None:
        form, value = entry
        ranges = unit_range_reader(reader, unit).ranges_of(value, form == F.FORM_RNGLISTX)
    else:
        low = unit.top_address(F.AT_LOW_PC)
        high_entry = unit.top.get(F.AT_HIGH_PC)
        if low is not None and high_entry is not None:
            form, value = high_entry
            if form in F.CONSTANT_FORMS:
                ranges = [(low, low + value)]
            elif form in F.ADDRX_FORMS:
                ranges = [(low, unit.addrx(value) or low)]
            else:
                ranges = [(low, value)]
    return [(low, high) for low, high in ranges if lowest <= low < high <= highest]


def build_cu_data(reader: DieReader, unit_offset: int) -> CuData:
    """Parse everything the resolver keeps from the unit at ``unit_offset``."""
    sections = reader.sections
    data = reader.unit_bytes(unit_offset)
    unit = reader.unit(unit_offset, data)
    header = unit.header
    name = unit.top_string(F.AT_NAME)
    comp_dir = unit.top_string(F.AT_COMP_DIR)
    producer = unit.top_string(F.AT_PRODUCER) or ""

    # Line table and file names.
    rows = _EMPTY_ROWS
    full_paths: list[str | None] = []
    statement_list = unit.top.get(F.AT_STMT_LIST)
    if statement_list is not None and sections.has(".debug_line"):
        table = read_line_table(sections, statement_list[1], unit, comp_dir, header.address_size)
        rows = table.rows
        full_paths = list(table.paths)
    roots = source_roots(comp_dir, full_paths)
    line_file_count = len(full_paths)

    # Functions.
    raw = walk_unit(unit, data)
    foreign_relative: list[str | None] = []
    tree = _function_tree(reader, unit, raw, full_paths, foreign_relative)
    relative_paths = tuple(relative_path(path, roots) for path in full_paths[:line_file_count])
    relative_paths += tuple(foreign_relative)
    return CuData(
        cu_offset=unit_offset,
        name=name,
        comp_dir=comp_dir,
        producer_is_clang="clang" in producer,
        full_paths=tuple(full_paths),
        relative_paths=relative_paths,
        line_file_count=line_file_count,
        row_addresses=rows.addresses,
        row_files=rows.files,
        row_lines=rows.lines,
        row_columns=rows.columns,
        names=tuple(tree.names),
        parents=array("i", raw.parents),
        ends=_subtree_ends(raw.parents),
        inlined=array("B", raw.inlined),
        call_files=array("I", tree.call_files),
        call_lines=array("I", tree.call_lines),
        call_columns=array("I", tree.call_columns),
        decl_files=array("I", tree.decl_files),
        decl_lines=array("I", tree.decl_lines),
        range_starts=array("I", tree.range_starts),
        range_lows=array("Q", tree.range_lows),
        range_highs=array("Q", tree.range_highs),
        root_lows=array("Q", [r[0] for r in tree.roots]),
        root_highs=array("Q", [r[1] for r in tree.roots]),
        root_nodes=array("I", [r[2] for r in tree.roots]),
    )


@dataclass(slots=True)
class _Tree:
    names: list[str | None] = field(default_factory=list)
    call_files: list[int] = field(default_factory=list)
    call_lines: list[int] = field(default_factory=list)
    call_columns: list[int] = field(default_factory=list)
    decl_files: list[int] = field(default_factory=list)
    decl_lines: list[int] = field(default_factory=list)
    range_starts: list[int] = field(default_factory=list)
    range_lows: list[int] = field(default_factory=list)
    range_highs: list[int] = field(default_factory=list)
    roots: list[tuple[int, int, int]] = field(default_factory=list)


def _function_tree(
    reader: DieReader,
    unit: Unit,
    raw: RawFunctions,
    full_paths: list[str | None],
    foreign_relative: list[str | None],
) -> _Tree:
    """Ranges, names, call sites and declarations of the function DIEs, as columns.

    Long because it is a per-DIE loop kept flat: a big unit has 40,000 function DIEs."""
    header = unit.header
    sections = reader.sections
    lowest, highest = sections.lowest_address, sections.highest_address
    ranges_reader = unit_range_reader(reader, unit)
    ranges_of = ranges_reader.ranges_of
    name_of = reader.name_of
    subprograms = raw.subprograms
    tree = _Tree()
    lows, highs, starts, roots = tree.range_lows, tree.range_highs, tree.range_starts, tree.roots
    names = tree.names
    call_files, call_lines, call_columns = tree.call_files, tree.call_lines, tree.call_columns
    decl_files, decl_lines = tree.decl_files, tree.decl_lines
    # Inlined copies of a function share its abstract origin: name each origin once.
    origin_names: dict[int, str | None] = {}
    foreign_files: dict[tuple[int, int], int] = {}
    for node, (values, inlined) in enumerate(zip(raw.values, raw.inlined, strict=True)):
        starts.append(len(lows))
        low = values[V_LOW_PC]
        high = values[V_HIGH_PC]
        if low is not None and high is not None:
            found = [(low, low + high if values[V_HIGH_IS_OFFSET] else high)]
        elif values[V_RANGES] is not None:
            found = ranges_of(values[V_RANGES], values[V_RANGES_IS_INDEX])
        else:
            found = []
        for start, end in found:
            if lowest <= start < end <= highest:
                lows.append(start)
                highs.append(end)
                if not inlined:
                    roots.append((start, end, node))
        origin = values[V_ORIGIN]
        if values[V_NAME] is None and origin is not None:
            if origin in origin_names:
                function_name = origin_names[origin]
            else:
                function_name = origin_names[origin] = name_of(values, subprograms)[0]
        else:
            function_name = name_of(values, subprograms)[0]
        names.append(function_name)
        if inlined:
            call_files.append(_unsigned(values[V_CALL_FILE], NO_VALUE))
            call_lines.append(_unsigned(values[V_CALL_LINE], 0))
            call_columns.append(_unsigned(values[V_CALL_COLUMN], 0))
            decl_files.append(NO_VALUE)
            decl_lines.append(0)
            continue
        call_files.append(NO_VALUE)
        call_lines.append(0)
        call_columns.append(0)
        decl_file, decl_line, holder = reader.declaration_of(values, subprograms)
        decl_lines.append(_unsigned(decl_line, 0))
        if decl_file is None:
            decl_files.append(NO_VALUE)
        elif holder is None or header.offset <= holder < header.end:
            decl_files.append(_unsigned(decl_file, NO_VALUE))
        else:
            decl_files.append(
                _foreign_file(
                    reader,
                    holder,
                    decl_file,
                    full_paths=full_paths,
                    relative_paths=foreign_relative,
                    known=foreign_files,
                )
            )
    starts.append(len(lows))
    roots.sort()
    return tree


def _unsigned(value: object, default: int) -> int:
    return value if isinstance(value, int) and 0 <= value < NO_VALUE else default


def _subtree_ends(parents: list[int]) -> array[int]:
    """End (exclusive) of each node's subtree in preorder, from the parent links."""
    ends = list(range(1, len(parents) + 1))
    for node in range(len(parents) - 1, -1, -1):
        parent = parents[node]
        if parent >= 0 and ends[node] > ends[parent]:
            ends[parent] = ends[node]
    return array("I", ends)


def _foreign_file(
    reader: DieReader,
    holder: int,
    file_number: int,
    *,
    full_paths: list[str | None],
    relative_paths: list[str | None],
    known: dict[tuple[int, int], int],
) -> int:
    """Index in ``full_paths`` of file ``file_number`` of the unit holding DIE ``holder``."""
    unit_offset = reader.index.unit_containing(holder)
    key = (unit_offset, file_number)
    if key in known:
        return known[key]
    unit = reader.unit(unit_offset)
    path = relative = None
    statement_list = unit.top.get(F.AT_STMT_LIST)
    if statement_list is not None:
        comp_dir = unit.top_string(F.AT_COMP_DIR)
        _header, paths = read_line_header(
            reader.sections, statement_list[1], unit, comp_dir, unit.header.address_size
        )
        if 0 <= file_number < len(paths):
            path = paths[file_number]
            relative = relative_path(path, source_roots(comp_dir, paths))
    full_paths.append(path)
    relative_paths.append(relative)
    known[key] = len(full_paths) - 1
    return known[key]
