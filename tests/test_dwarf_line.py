"""The line-program decoder on programs built in the test from intended rows.

Each program is assembled from a list of sequences of rows, using every kind of opcode that
can produce them (special opcodes, advance_pc/const_add_pc/fixed_advance_pc + copy, negative
line advances, file and column changes, opcodes that change nothing we keep, vendor extended
opcodes). The decoder must answer, for every address, what a naive reading of the rows gives:
the last row at or before the address in the sequence that holds it (DWARF 5 §6.2; llvm's
findRowInSeq), and nothing outside every sequence.
"""

from __future__ import annotations

import struct
from bisect import bisect_right

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leb128 import sleb, uleb

from ltosyms.dwarf import DwarfConfig, DwarfSections
from ltosyms.dwarf.line import LineRows, read_line_header, read_line_table

Row = tuple[int, int, int, int]  # address, file, line, column
Sequence = tuple[list[Row], int]  # rows (addresses non-decreasing), end address

OPCODE_BASE = 13
LINE_BASE = -5
LINE_RANGE = 14


def encode_program(sequences: list[Sequence], style: int = 0) -> bytes:
    """Opcodes producing exactly ``sequences``; ``style`` varies which opcodes are used."""
    out = bytearray()
    for number, (rows, end) in enumerate(sequences):
        address, file, line, column = rows[0][0], 1, 1, 0
        out += b"\x00" + uleb(9) + b"\x02" + struct.pack("<Q", address)
        for index, (row_address, row_file, row_line, row_column) in enumerate(rows):
            choice = (index + style + number) % 4
            if row_file != file:
                out += b"\x04" + uleb(row_file)
                file = row_file
            if row_column != column:
                out += b"\x05" + uleb(row_column)
                column = row_column
            if choice == 1:
                out += b"\x06"  # negate_stmt: changes nothing we keep
                out += b"\x00" + uleb(2) + b"\x04" + uleb(index % 100)  # set_discriminator
            if choice == 2:
                out += b"\x00" + uleb(3) + b"\x80\xaa\xbb"  # vendor extended opcode
                out += b"\x07\x0a\x0b"  # basic_block, prologue_end, epilogue_begin
            address_delta = row_address - address
            line_delta = row_line - line
            special = (line_delta - LINE_BASE) + LINE_RANGE * address_delta + OPCODE_BASE
            if choice != 3 and LINE_BASE <= line_delta < LINE_BASE + LINE_RANGE and special <= 255:
                out.append(special)
            else:
                if line_delta:
                    out += b"\x03" + sleb(line_delta)
                const_step = (255 - OPCODE_BASE) // LINE_RANGE
                if choice == 3 and address_delta >= const_step:
                    out += b"\x08"  # const_add_pc
                    address_delta -= const_step
                if choice == 3 and 0 < address_delta < 0x10000:
                    out += b"\x09" + struct.pack("<H", address_delta)  # fixed_advance_pc
                elif address_delta:
                    out += b"\x02" + uleb(address_delta)
                out.append(0x01)  # copy
            address, line = row_address, row_line
        out += b"\x02" + uleb(end - address)
        out += b"\x00" + uleb(1) + b"\x01"  # end_sequence
    return bytes(out)


def v5_table(
    program: bytes, directories: list[str], files: list[tuple[str, int]]
) -> dict[str, bytes]:
    """.debug_line and .debug_line_str for a DWARF 5 line table."""
    strings = bytearray(b"\0")

    def line_strp(text: str) -> bytes:
        offset = len(strings)
        strings.extend(text.encode() + b"\0")
        return struct.pack("<I", offset)

    header = bytearray()
    header += bytes([1, 1, 1])  # min_inst_length, max_ops, default_is_stmt
    header += struct.pack("<bBB", LINE_BASE, LINE_RANGE, OPCODE_BASE)
    header += bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    header += bytes([1]) + uleb(1) + uleb(0x1F)  # directories: path as line_strp
    header += uleb(len(directories)) + b"".join(line_strp(d) for d in directories)
    # files: path as string, directory index as udata, MD5 as data16
    header += bytes([3]) + uleb(1) + uleb(0x08) + uleb(2) + uleb(0x0F) + uleb(5) + uleb(0x1E)
    header += uleb(len(files))
    for name, directory in files:
        header += name.encode() + b"\0" + uleb(directory) + bytes(range(16))
    body = struct.pack("<HBB", 5, 8, 0) + struct.pack("<I", len(header)) + header + program
    return {".debug_line": struct.pack("<I", len(body)) + body, ".debug_line_str": bytes(strings)}


def v4_table(
    program: bytes, directories: list[str], files: list[tuple[str, int]]
) -> dict[str, bytes]:
    header = bytearray()
    header += bytes([1, 1, 1]) + struct.pack("<bBB", LINE_BASE, LINE_RANGE, OPCODE_BASE)
    header += bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    for directory in directories:
        header += directory.encode() + b"\0"
    header += b"\0"
    for name, directory in files:
        header += name.encode() + b"\0" + uleb(directory) + uleb(0) + uleb(0)
    header += b"\0"
    body = struct.pack("<H", 4) + struct.pack("<I", len(header)) + header + program
    return {".debug_line": struct.pack("<I", len(body)) + body}


def naive_row(sequences: list[Sequence], address: int) -> tuple[int, int, int] | None:
    for rows, end in sequences:
        if rows[0][0] <= address < end:
            position = bisect_right([r[0] for r in rows], address) - 1
            _address, file, line, column = rows[position]
            return file, line, column
    return None


def decode(contents: dict[str, bytes], lowest: int = 0, highest: int = 1 << 64) -> LineRows:
    sections = DwarfSections.from_bytes(
        contents, DwarfConfig(name="<memory>", lowest_address=lowest, highest_address=highest)
    )
    return read_line_table(sections, 0, None, "/comp", 8).rows


def check_every_address(rows: LineRows, sequences: list[Sequence]) -> None:
    low = min(s[0][0][0] for s in sequences) - 2
    high = max(s[1] for s in sequences) + 2
    for address in range(low, high):
        assert rows.row_at(address) == naive_row(sequences, address), hex(address)


FIXED_SEQUENCES: list[Sequence] = [
    (
        [
            (0x2000, 1, 10, 0),
            (0x2000, 1, 11, 4),  # same address: the later row wins
            (0x2004, 1, 11, 4),  # same position: answers the same as the row before
            (0x2009, 2, 3, 1),
            (0x2040, 2, 1, 1),  # line goes back
            (0x2040, 3, 900, 77),
            (0x3000, 3, 2, 0),  # far advance
        ],
        0x3010,
    ),
    ([(0x1000, 1, 5, 0), (0x1002, 1, 6, 0)], 0x1008),  # a second, lower sequence
    ([(0x3010, 1, 50, 2)], 0x3020),  # starts where the first one ends
]


@pytest.mark.parametrize("style", range(4))
@pytest.mark.parametrize("version", [4, 5])
def test_rows_answer_like_a_naive_reading(version: int, style: int) -> None:
    program = encode_program(FIXED_SEQUENCES, style)
    table = (v5_table if version == 5 else v4_table)(program, ["/comp", "lib"], [("a.c", 1)] * 4)
    check_every_address(decode(table), FIXED_SEQUENCES)


def test_rows_are_kept_only_where_the_answer_changes() -> None:
    table = v5_table(encode_program(FIXED_SEQUENCES), ["/comp"], [("a.c", 0)] * 4)
    rows = decode(table)
    # 10 rows and 3 end markers written. Kept: the first sequence's rows at 0x2000 (the
    # later one), 0x2009, 0x2040 (the later one), 0x3000 and its end; 2 + end; 1 + end.
    assert len(rows.addresses) == 10


def test_tombstoned_sequences_are_dropped() -> None:
    # Code the linker discarded keeps address 0 (or -1) in the line table; such sequences
    # overlap each other and must not answer for real addresses.
    sequences: list[Sequence] = [
        ([(0, 1, 7, 0), (4, 1, 8, 0)], 0x10),
        ([(0x4000, 1, 3, 0)], 0x4010),
        ([(0xFFFFFFFFFFFFFFF0, 1, 9, 0)], 0xFFFFFFFFFFFFFFF8),
    ]
    table = v5_table(encode_program(sequences), ["/c"], [("a.c", 0)] * 2)
    rows = decode(table, lowest=0x1000, highest=0x100000)
    assert rows.row_at(4) is None
    assert rows.row_at(0xFFFFFFFFFFFFFFF4) is None
    assert rows.row_at(0x4004) == (1, 3, 0)


def test_advance_that_wraps_around_steps_back() -> None:
    # arm64 entry.S: the assembler steps back with an advance_pc of 2**64 - n; llvm wraps the
    # address, and the rows of the sequence come out of address order. The sequence still
    # covers [first row, end_sequence) only, as llvm's Sequence::containsPC has it.
    program = bytearray()
    program += b"\x00" + uleb(9) + b"\x02" + struct.pack("<Q", 0x10000)
    program += b"\x03" + sleb(9) + b"\x01"  # 0x10000 line 10
    program += b"\x02" + uleb(0x100) + b"\x03" + sleb(1) + b"\x01"  # 0x10100 line 11
    program += b"\x02" + uleb((1 << 64) - 0xF8) + b"\x03" + sleb(1) + b"\x01"  # 0x10008 line 12
    program += b"\x02" + uleb(0x10) + b"\x00\x01\x01"  # end at 0x10018
    rows = decode(v5_table(bytes(program), ["/c"], [("a.c", 0)] * 2))
    assert rows.row_at(0x10004) == (1, 10, 0)
    assert rows.row_at(0x10008) == (1, 12, 0)
    assert rows.row_at(0x10017) == (1, 12, 0)
    assert rows.row_at(0x10018) is None
    assert rows.row_at(0x10100) is None  # the row at 0x10100 lies past the end


def test_file_paths_are_joined_as_llvm_joins_them() -> None:
    program = encode_program([([(0x1000, 1, 1, 0)], 0x1004)])
    v5 = v5_table(
        program,
        ["build", "lib", "/abs/include"],
        [("main.c", 1), ("main.c", 1), ("x.h", 2), ("/abs/y.h", 1), ("<built-in>", 0)],
    )
    paths = read_line_header(DwarfSections.from_bytes(v5), 0, None, "build", 8).paths()
    # DWARF 5: directory 0 is the compilation directory itself; relative directories are
    # relative to DW_AT_comp_dir.
    assert paths == (
        "build/lib/main.c",
        "build/lib/main.c",
        "/abs/include/x.h",
        "/abs/y.h",
        "build/<built-in>",
    )
    v4 = v4_table(program, ["lib", "/abs/include"], [("main.c", 1), ("x.h", 2), ("top.c", 0)])
    paths = read_line_header(DwarfSections.from_bytes(v4), 0, None, "/comp", 8).paths()
    # DWARF 4: files count from 1 (0 is "no file"); directory 0 means the compilation dir.
    assert paths == (None, "/comp/lib/main.c", "/abs/include/x.h", "/comp/top.c")


rows_strategy = st.lists(
    st.tuples(
        st.integers(0, 300),  # address delta
        st.integers(1, 4),  # file
        st.integers(-40, 60),  # line delta
        st.integers(0, 3),  # column
    ),
    min_size=1,
    max_size=40,
)


@settings(derandomize=True, max_examples=100, deadline=None)
@given(st.lists(rows_strategy, min_size=1, max_size=4), st.integers(0, 3))
def test_random_programs_answer_like_a_naive_reading(
    shapes: list[list[tuple[int, int, int, int]]], style: int
) -> None:
    sequences: list[Sequence] = []
    start = 0x10000
    for shape in shapes:
        rows: list[Row] = []
        address, line = start, 100
        for delta, file, line_delta, column in shape:
            address += delta
            line = max(1, line + line_delta)
            rows.append((address, file, line, column))
        end = address + 1 + shape[0][0] % 7
        sequences.append((rows, end))
        start = end + 0x100
    sequences.reverse()  # sequences need not come in address order
    table = v5_table(encode_program(sequences, style), ["/c"], [("a.c", 0)] * 5)
    check_every_address(decode(table), sequences)
