"""The line number program of one unit: header (DWARF 2-5) and state machine, decoded to rows.

DWARF 5 §6.2. The state machine runs over the raw bytes of one unit's program (a few KB to a
few hundred KB); special opcodes, the bulk of any program, cost two table lookups and one
append. Rows are kept per sequence, then sequences are sorted by address so one bisection
finds the row for an address. A row with ``file == END_OF_SEQUENCE`` marks the first address
after a sequence (DW_LNE_end_sequence): an address that lands on it has no line.
"""

from __future__ import annotations

import posixpath
import struct
from array import array
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.forms import read_sleb, read_uleb
from ltosyms.dwarf.paths import choose_roots, root_candidate
from ltosyms.dwarf.sections import DwarfSections
from ltosyms.dwarf.unit_tables import END_OF_SEQUENCE, find_row
from ltosyms.dwarf.units import Unit, UnitHeader, read_form
from ltosyms.errors import DwarfError

# The file register value kept for a file number that does not fit the row arrays (bad data).
_NO_SUCH_FILE = END_OF_SEQUENCE - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class LineHeader:
    version: int
    offset_size: int
    address_size: int
    minimum_instruction_length: int
    default_is_stmt: bool
    line_base: int
    line_range: int
    opcode_base: int
    standard_opcode_lengths: tuple[int, ...]
    directories: tuple[str, ...]
    files: tuple[tuple[str, int], ...]  # (name, directory index), in file-register numbering
    program_start: int  # offset inside the unit bytes
    program_end: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LineRows:
    """Rows of all sequences, sorted by address; ``files`` are file register values."""

    addresses: array[int]
    files: array[int]
    lines: array[int]
    columns: array[int]

    def row_at(self, link_address: int) -> tuple[int, int, int] | None:
        """(file, line, column) at ``link_address``, None where no sequence covers it."""
        row = find_row(self.addresses, self.files, link_address)
        if row is None:
            return None
        return self.files[row], self.lines[row], self.columns[row]


class FileTable:
    """The file names of a line table header, joined into paths only when asked for.

    gcc lists every header a unit includes (a thousand files is common) while its rows and
    inlined calls name a few dozen: paths are built per file number, on demand."""

    __slots__ = ("_directories", "_paths", "comp_dir", "header")

    def __init__(self, header: LineHeader, comp_dir: str | None) -> None:
        self.header = header
        self.comp_dir = comp_dir
        self._directories: dict[int, str] = {}
        self._paths: dict[int, str | None] = {}

    def __len__(self) -> int:
        return len(self.header.files)

    def directory(self, index: int) -> str:
        """Directory ``index``, prefixed with the compilation directory as llvm-symbolizer does
        (llvm DWARFDebugLine::Prologue::getFileNameByIndex, AbsoluteFilePath): not
        normalized, so full paths read as the tools print them (``/src/./x.h``)."""
        joined = self._directories.get(index)
        if joined is None:
            header = self.header
            directories = header.directories
            directory = ""
            if header.version >= 5:
                if 0 <= index < len(directories):
                    directory = directories[index]
            elif 0 < index <= len(directories):
                directory = directories[index - 1]
            # DWARF 5 directory 0 is the compilation directory itself.
            is_comp_dir = header.version >= 5 and index == 0
            comp_dir = self.comp_dir
            joined = directory
            if not directory.startswith("/") and comp_dir and not is_comp_dir:
                joined = _append(comp_dir, directory)
            self._directories[index] = joined
        return joined

    def path(self, number: int) -> str | None:
        """Full path of file register value ``number`` (None: no such file)."""
        if number in self._paths:
            return self._paths[number]
        path: str | None = None
        files = self.header.files
        if 0 <= number < len(files):
            name, index = files[number]
            if index >= 0:
                path = name if name.startswith("/") else _append(self.directory(index), name)
        self._paths[number] = path
        return path

    def paths(self) -> tuple[str | None, ...]:
        return tuple(self.path(number) for number in range(len(self.header.files)))

    def roots(self) -> tuple[str, ...]:
        """Prefixes to strip from this table's paths (:mod:`ltosyms.dwarf.paths`): the
        compilation directory and the source root most of the files lie under."""
        found: Counter[str] = Counter()
        directory_roots: dict[int, str | None] = {}
        for name, index in self.header.files:
            if index < 0:
                continue
            candidate = root_candidate(name)
            if candidate is not None and not name.startswith("/"):
                directory = self.directory(index)
                candidate = _append(directory, candidate) if candidate else directory
            elif candidate is None:
                if index not in directory_roots:
                    directory_roots[index] = root_candidate(self.directory(index) + "/")
                candidate = directory_roots[index]
            if candidate:
                found[posixpath.normpath(candidate)] += 1
        return choose_roots(self.comp_dir, found)


def _append(path: str, component: str) -> str:
    """llvm::sys::path::append for POSIX paths: one separator between the parts."""
    if not path:
        return component
    if path.endswith("/"):
        return path + component.lstrip("/")
    if component.startswith("/"):
        return path + component
    return f"{path}/{component}"


class LineTable:
    """A unit's line table: its files and its rows."""

    __slots__ = ("files", "rows")

    def __init__(self, files: FileTable, rows: LineRows) -> None:
        self.files = files
        self.rows = rows

    @property
    def header(self) -> LineHeader:
        return self.files.header


def read_line_table(
    sections: DwarfSections,
    offset: int,
    unit: Unit | None,
    comp_dir: str | None,
    default_address_size: int,
) -> LineTable:
    """Decode the line program at ``offset`` of ``.debug_line`` for the unit ``unit``."""
    section = sections.require(".debug_line")
    endian = sections.endian
    try:
        head = section.read_to_end(offset, 12)
        (length,) = struct.unpack_from(endian + "I", head, 0)
        prefix = 4
        if length == 0xFFFFFFFF:
            (length,) = struct.unpack_from(endian + "Q", head, 4)
            prefix = 12
    except struct.error:
        raise DwarfError(f".debug_line: truncated header at {offset:#x}") from None
    data = section.read(offset, prefix + length)
    try:
        header = _read_header(
            data, prefix, endian, sections, unit=unit, default_address_size=default_address_size
        )
        rows = _run_program(data, header, endian, sections.lowest_address, sections.highest_address)
    except (IndexError, struct.error, ValueError):
        raise DwarfError(f".debug_line: line program at {offset:#x} is truncated") from None
    return LineTable(FileTable(header, comp_dir), rows)


def read_line_header(
    sections: DwarfSections,
    offset: int,
    unit: Unit | None,
    comp_dir: str | None,
    default_address_size: int,
) -> FileTable:
    """Only the header of the line program (its file table), without running the program."""
    section = sections.require(".debug_line")
    endian = sections.endian
    window = 4096
    while True:
        data = section.read_to_end(offset, window)
        try:
            (length,) = struct.unpack_from(endian + "I", data, 0)
            prefix = 4
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from(endian + "Q", data, 4)
                prefix = 12
            header = _read_header(
                data, prefix, endian, sections, unit=unit, default_address_size=default_address_size
            )
            return FileTable(header, comp_dir)
        except (IndexError, struct.error, ValueError):
            if len(data) < window:
                raise DwarfError(f".debug_line: header at {offset:#x} is truncated") from None
            window *= 8


def _read_header(
    data: bytes,
    position: int,
    endian: str,
    sections: DwarfSections,
    *,
    unit: Unit | None,
    default_address_size: int,
) -> LineHeader:
    offset_size = 8 if position == 12 else 4
    (length,) = struct.unpack_from(
        endian + ("I" if offset_size == 4 else "Q"), data, position - offset_size
    )
    unit_end = position + length
    (version,) = struct.unpack_from(endian + "H", data, position)
    position += 2
    if not 2 <= version <= 5:
        raise DwarfError(f".debug_line: unsupported line table version {version}")
    address_size = default_address_size
    if version >= 5:
        address_size = data[position]
        position += 2  # address_size, segment_selector_size
    (header_length,) = struct.unpack_from(
        endian + ("I" if offset_size == 4 else "Q"), data, position
    )
    position += offset_size
    program_start = position + header_length
    minimum_instruction_length = data[position]
    position += 1
    if version >= 4:
        position += 1  # maximum_operations_per_instruction: VLIW only
    default_is_stmt = bool(data[position])
    line_base = struct.unpack_from("b", data, position + 1)[0]
    line_range = data[position + 2]
    opcode_base = data[position + 3]
    position += 4
    standard_opcode_lengths = tuple(data[position : position + opcode_base - 1])
    position += opcode_base - 1
    if line_range == 0:
        raise DwarfError(".debug_line: line_range is 0")
    directories: list[str] = []
    files: list[tuple[str, int]] = []
    if version >= 5:
        form_header = UnitHeader(
            offset=0,
            end=0,
            version=version,
            unit_type=0,
            address_size=address_size,
            offset_size=offset_size,
            abbrev_offset=0,
            first_die=0,
        )
        entries, position = _v5_entries(
            data, position, form_header, endian, sections=sections, unit=unit
        )
        directories = [path for path, _ in entries]
        files, position = _v5_entries(
            data, position, form_header, endian, sections=sections, unit=unit
        )
    else:
        while data[position]:
            end = data.index(0, position)
            directories.append(data[position:end].decode("utf-8", "replace"))
            position = end + 1
        position += 1
        # DWARF 2-4 number files from 1: index 0 stands for "no file".
        files.append(("", -1))
        while data[position]:
            end = data.index(0, position)
            name = data[position:end].decode("utf-8", "replace")
            directory, position = read_uleb(data, end + 1)
            _mtime, position = read_uleb(data, position)
            _size, position = read_uleb(data, position)
            files.append((name, directory))
    return LineHeader(
        version=version,
        offset_size=offset_size,
        address_size=address_size,
        minimum_instruction_length=minimum_instruction_length,
        default_is_stmt=default_is_stmt,
        line_base=line_base,
        line_range=line_range,
        opcode_base=opcode_base,
        standard_opcode_lengths=standard_opcode_lengths,
        directories=tuple(directories),
        files=tuple(files),
        program_start=program_start,
        program_end=unit_end,
    )


def _v5_entries(
    data: bytes,
    position: int,
    form_header: UnitHeader,
    endian: str,
    *,
    sections: DwarfSections,
    unit: Unit | None,
) -> tuple[list[tuple[str, int]], int]:
    """A DWARF 5 directory or file-name table: (path, directory index) per entry.

    gcc lists every header a unit includes (a thousand entries is common), so the usual forms
    (line_strp/strp/string paths, udata/data1/data2 indexes, data16 MD5) are read inline and
    only others go through the general form reader."""
    format_count = data[position]
    position += 1
    formats = []
    for _ in range(format_count):
        content, position = read_uleb(data, position)
        form, position = read_uleb(data, position)
        formats.append((content, form))
    count, position = read_uleb(data, position)
    # A damaged count must not make us loop: every entry takes at least one byte, and a count
    # with no formats describes nothing (DWARF 5 section 6.2.4, items 19-22).
    if count and (not formats or count > len(data) - position):
        raise DwarfError(
            f"line table: {count} entries with {len(formats)} formats in "
            f"{len(data) - position} bytes"
        )
    offset_format = struct.Struct(endian + ("I" if form_header.offset_size == 4 else "Q"))
    unpack_offset = offset_format.unpack_from
    offset_size = form_header.offset_size
    line_strings = sections.line_strings.get
    strings = sections.strings.get
    entries = []
    for _ in range(count):
        path = ""
        directory = 0
        for content, form in formats:
            if form in (F.FORM_LINE_STRP, F.FORM_STRP):
                (offset,) = unpack_offset(data, position)
                position += offset_size
                if content == F.LNCT_PATH:
                    path = (line_strings if form == F.FORM_LINE_STRP else strings)(offset)
                continue
            if form == F.FORM_UDATA:
                value = data[position]
                position += 1
                if value > 127:
                    value, position = read_uleb(data, position - 1)
            elif form == F.FORM_DATA16:
                position += 16
                continue
            elif form == F.FORM_DATA1:
                value = data[position]
                position += 1
            else:
                raw, position, actual = read_form(
                    data, position, form, 0, form_header, endian=endian
                )
                if content == F.LNCT_PATH:
                    path = _string(actual, raw, unit) or ""
                    continue
                value = raw if isinstance(raw, int) else 0
            if content == F.LNCT_DIRECTORY_INDEX:
                directory = value
        entries.append((path, directory))
    return entries, position


def _string(form: int, value: Any, unit: Unit | None) -> str | None:
    if form == F.FORM_STRING:
        return bytes(value).decode("utf-8", "replace")
    if form in F.STRX_FORMS and unit is not None:
        return unit.strx(value)
    return None


def _run_program(
    data: bytes, header: LineHeader, endian: str, lowest: int, highest: int
) -> LineRows:
    """Run the line-number state machine (DWARF 5 §6.2.2, §6.2.5) over the whole program.

    Rows are kept only where the answer changes: a row at the same address as the previous
    one replaces it (a lookup takes the last row at an address, like llvm's findRowInSeq),
    and a row with the same file, line and column as the previous one is dropped (the
    previous row already answers for its addresses). gcc's view-numbered programs shrink
    about 5x this way. That is only valid while addresses grow: a sequence that steps back
    (:func:`_decode` reports it) is decoded again without dropping rows, then sorted.
    """
    result = _decode(data, header, endian, compress=True)
    if result is None:
        result = _decode(data, header, endian, compress=False)
        assert result is not None
    # Sequences not ended are incomplete (truncated program): dropped, like llvm does.
    # Sequences of discarded code start at a tombstone (0, -1, ...) outside the image's code;
    # they may wrap past 2**64 too. Keep those that start and end inside the code.
    kept = [s for s in result if len(s) > 1 and lowest <= s[0][0] < s[-1][0] <= highest]
    kept.sort(key=lambda sequence: sequence[0][0])
    merged = [row for sequence in kept for row in sequence]
    if merged:
        addresses, files, lines, columns = zip(*merged, strict=True)
    else:
        addresses = files = lines = columns = ()
    try:
        return LineRows(
            addresses=array("Q", addresses),
            files=array("I", files),
            lines=array("I", lines),
            columns=array("I", columns),
        )
    except OverflowError:
        # A line advanced below 0, a column or a file number past 2**32 in bad data: no such
        # line, and a file number past any table (which names no file).
        def clamp(values: tuple[int, ...], default: int) -> list[int]:
            return [value if 0 <= value < 1 << 32 else default for value in values]

        return LineRows(
            addresses=array("Q", addresses),
            files=array("I", clamp(files, _NO_SUCH_FILE)),
            lines=array("I", clamp(lines, 0)),
            columns=array("I", clamp(columns, 0)),
        )


Row = tuple[int, int, int, int]


def _decode(
    data: bytes, header: LineHeader, endian: str, *, compress: bool
) -> list[list[Row]] | None:
    """The rows of every sequence; None when ``compress`` and a sequence went backwards.

    Long because it is the inner loop: every opcode is handled inline, most frequent first
    (gcc: special, copy, set_column, negate_stmt, advance_line; opcode numbers are DWARF 5
    §7.22 literals, a global lookup per opcode costs more than the work).
    """
    opcode_base = header.opcode_base
    line_range = header.line_range
    line_base = header.line_base
    step = header.minimum_instruction_length
    address_step = [0] * 256
    line_step = [0] * 256
    for opcode in range(opcode_base, 256):
        adjusted = opcode - opcode_base
        address_step[opcode] = (adjusted // line_range) * step
        line_step[opcode] = line_base + adjusted % line_range
    const_add_pc = address_step[255]
    lengths = header.standard_opcode_lengths
    unpack_u16 = struct.Struct(endian + "H").unpack_from
    unpack_u32 = struct.Struct(endian + "I").unpack_from
    unpack_u64 = struct.Struct(endian + "Q").unpack_from
    address_mask = (1 << (8 * header.address_size)) - 1

    sequences: list[list[Row]] = []
    rows: list[Row] = []
    append = rows.append
    disordered = False
    address = 0
    file = 1
    line = 1
    column = 0
    # The last kept row (-1: none yet in this sequence). Without compression nothing is ever
    # equal to it, so every row is kept.
    row_address = row_file = row_line = row_column = -1
    keep_all = not compress
    position = header.program_start
    end = header.program_end
    while position < end:
        opcode = data[position]
        position += 1
        if opcode >= opcode_base or opcode == 1:
            # A special opcode advances, then emits a row; DW_LNS_copy only emits one.
            if opcode != 1:
                address += address_step[opcode]
                line += line_step[opcode]
            if address != row_address or keep_all:
                if line != row_line or column != row_column or file != row_file or keep_all:
                    append((address, file, line, column))
                    row_address = address
                    row_file = file
                    row_line = line
                    row_column = column
            else:
                rows[-1] = (address, file, line, column)
                row_file = file
                row_line = line
                row_column = column
        elif opcode == 5:  # DW_LNS_set_column
            column = data[position]
            position += 1
            if column > 127:
                column, position = read_uleb(data, position - 1)
        elif opcode == 6:  # DW_LNS_negate_stmt
            pass
        elif opcode == 3:  # DW_LNS_advance_line (SLEB128; one and two bytes inline)
            value = data[position]
            if value < 64:
                position += 1
            elif value < 128:
                value -= 128
                position += 1
            elif data[position + 1] < 128:
                value = (value & 0x7F) | data[position + 1] << 7
                if value & 0x2000:
                    value -= 0x4000
                position += 2
            else:
                value, position = read_sleb(data, position)
            line += value
        elif opcode == 4:  # DW_LNS_set_file
            file = data[position]
            position += 1
            if file > 127:
                file, position = read_uleb(data, position - 1)
        elif opcode == 0:  # extended opcode
            length = data[position]
            position += 1
            if length > 127:
                length, position = read_uleb(data, position - 1)
            sub_opcode = data[position]
            if sub_opcode == 1:  # DW_LNE_end_sequence
                if disordered:
                    if compress:
                        return None
                    rows = _reorder(rows, address)
                    disordered = False
                else:
                    append((address, END_OF_SEQUENCE, 0, 0))
                sequences.append(rows)
                rows = []
                append = rows.append
                address = 0
                file = 1
                line = 1
                column = 0
                row_address = row_file = row_line = row_column = -1
            elif sub_opcode == 2:  # DW_LNE_set_address
                previous = address
                if length == 9:
                    (address,) = unpack_u64(data, position + 1)
                elif length == 5:
                    (address,) = unpack_u32(data, position + 1)
                else:
                    raise DwarfError(f".debug_line: DW_LNE_set_address of {length - 1} bytes")
                if rows and address < previous:
                    disordered = True
            # DW_LNE_set_discriminator, define_file and vendor opcodes change nothing we keep.
            position += length
        elif opcode == 2:  # DW_LNS_advance_pc
            value = data[position]
            position += 1
            if value > 127:
                value, position = read_uleb(data, position - 1)
            address += value * step
            if address > address_mask:
                # Assemblers encode a step back as a huge advance that wraps around
                # (arm64 entry.S switching subsections): rows go out of order.
                address &= address_mask
                disordered = True
        elif opcode == 8:  # DW_LNS_const_add_pc
            address += const_add_pc
        elif opcode == 9:  # DW_LNS_fixed_advance_pc
            address += unpack_u16(data, position)[0]
            position += 2
        elif opcode in (7, 10, 11):  # set_basic_block, set_prologue_end, set_epilogue_begin
            pass
        else:
            # DW_LNS_set_isa and unknown standard opcodes: skip their ULEB operands.
            for _ in range(lengths[opcode - 1] if opcode - 1 < len(lengths) else 0):
                _value, position = read_uleb(data, position)
    return sequences


def _reorder(rows: list[Row], end_address: int) -> list[Row]:
    """A sequence whose rows went backwards, sorted by address (stable: rows at the same
    address keep their order) and reduced to the rows where the answer changes.

    Like llvm, the sequence covers [first row, end_sequence): rows the program put outside
    that range (an assembler's other subsection) answer for nothing."""
    low = rows[0][0] if rows else end_address
    inside = sorted((row for row in rows if low <= row[0] < end_address), key=lambda r: r[0])
    kept: list[Row] = []
    for row in inside:
        if kept and kept[-1][0] == row[0]:
            kept[-1] = row
        elif not kept or kept[-1][1:] != row[1:]:
            kept.append(row)
    kept.append((end_address, END_OF_SEQUENCE, 0, 0))
    return kept
