"""Malformed DWARF is a DwarfError raised where a decoder meets it (exit 2, one line); a bug in
a decoder is not caught on the way and reaches exit 70.

The decoders check what malformed input could turn into another exception: an address size
the readers do not take, a number attribute held in a block, DIEs nested deeper than any
compiler nests them, DW_FORM_indirect naming itself again and again. Reads past a buffer are
translated where the read happens (the walk, the window readers, the index readers).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SAMPLES
from test_dwarf_info import Assembler, Die, Strings, line_table

from ltosyms.cli import EXIT_INTERNAL, cli
from ltosyms.dwarf import DwarfSections, info
from ltosyms.dwarf import forms as F
from ltosyms.dwarf.build import build_cu_data
from ltosyms.dwarf.info import DieReader
from ltosyms.dwarf.line import read_line_table
from ltosyms.elf.image import open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import DwarfError
from ltosyms.limits import MAX_INLINE_DEPTH

VMLINUX = SAMPLES / "vmlinux-gcc"
CODE = (0x1000, 0x1100)  # [low, high) of the one function of the assembled units


def assembled(
    children: list[Die], top: list[tuple[int, int, object]] | None = None
) -> tuple[DwarfSections, int]:
    strings = Strings()
    asm = Assembler()
    offset = asm.unit(
        Die(
            F.TAG_COMPILE_UNIT,
            [
                (F.AT_NAME, F.FORM_STRP, strings("unit.c")),
                (F.AT_LOW_PC, F.FORM_ADDR, CODE[0]),
                (F.AT_HIGH_PC, F.FORM_DATA4, CODE[1] - CODE[0]),
                *(top or []),
            ],
            children,
        )
    )
    info_bytes, abbrev = asm.finish()
    sections = DwarfSections.from_bytes(
        {".debug_info": info_bytes, ".debug_abbrev": abbrev, ".debug_str": bytes(strings.data)}
    )
    return sections, offset


def inline_tree(depth: int) -> list[Die]:
    """An abstract ``leaf`` and a function whose code holds ``depth`` inlined calls of it,
    each inside the one before, all over the function's whole code."""
    ranges = [(F.AT_LOW_PC, F.FORM_ADDR, CODE[0]), (F.AT_HIGH_PC, F.FORM_DATA4, CODE[1] - CODE[0])]
    inlined: list[Die] = []
    for level in range(depth):
        inlined = [
            Die(
                F.TAG_INLINED_SUBROUTINE,
                [
                    (F.AT_ABSTRACT_ORIGIN, F.FORM_REF4, ("ref", "leaf")),
                    *ranges,
                    (F.AT_CALL_LINE, F.FORM_DATA2, level + 1),
                ],
                inlined,
            )
        ]
    return [
        Die(
            F.TAG_SUBPROGRAM,
            [(F.AT_NAME, F.FORM_STRING, b"leaf"), (F.AT_INLINE, F.FORM_DATA1, 3)],
            label="leaf",
        ),
        Die(F.TAG_SUBPROGRAM, [(F.AT_NAME, F.FORM_STRING, b"outer"), *ranges], inlined),
    ]


def test_inlined_calls_nested_as_deep_as_compilers_nest_them_make_a_chain() -> None:
    sections, offset = assembled(inline_tree(200))
    chain = build_cu_data(DieReader(sections), offset).locations(CODE[0] + 8)
    assert [entry.function for entry in chain] == ["leaf"] * 200 + ["outer"]
    # Each entry but the innermost takes the call site of the call inside it.
    assert [entry.line for entry in chain[1:]] == list(range(1, 201))


def test_inlined_calls_nested_past_the_bound_are_a_dwarf_error() -> None:
    sections, offset = assembled(inline_tree(MAX_INLINE_DEPTH))
    with pytest.raises(DwarfError, match=rf"DIEs nest more than {MAX_INLINE_DEPTH} deep at 0x"):
        build_cu_data(DieReader(sections), offset)
    with pytest.raises(DwarfError, match="nest more than"):
        DieReader(sections).program_dies(offset)


def test_indirect_forms_naming_indirect_forms_are_read_without_recursion() -> None:
    # DW_FORM_indirect: the form is in the data, and may be DW_FORM_indirect again (DWARF 5
    # §7.5.3). 5000 of them would overflow a recursive reader.
    chain = bytes([F.FORM_INDIRECT]) * 5000 + bytes([F.FORM_DATA1, 7])
    variable = Die(0x34, [(F.AT_NAME, F.FORM_STRING, b"v"), (0x1C, F.FORM_INDIRECT, chain)])
    children = [variable, *inline_tree(1)]
    sections, offset = assembled(children, top=[(0x1C, F.FORM_INDIRECT, chain)])
    reader = DieReader(sections)
    data = build_cu_data(reader, offset)
    assert [entry.function for entry in data.locations(CODE[0])] == ["leaf", "outer"]
    assert reader.unit(offset).top[0x1C] == (F.FORM_DATA1, 7)
    _unit, dies = reader.program_dies(offset)
    assert dies.tags == [F.TAG_SUBPROGRAM, F.TAG_SUBPROGRAM, F.TAG_INLINED_SUBROUTINE]


def test_an_address_size_the_readers_do_not_take_is_a_dwarf_error() -> None:
    sections, offset = assembled(inline_tree(1))
    info_bytes = bytearray(sections.require(".debug_info").whole())
    info_bytes[offset + 7] = 3  # DWARF 5 unit header: length, version, unit_type, address_size
    damaged = DwarfSections.from_bytes(
        {
            ".debug_info": bytes(info_bytes),
            ".debug_abbrev": sections.require(".debug_abbrev").whole(),
        }
    )
    with pytest.raises(DwarfError, match="unit at 0x0 has 3-byte addresses"):
        build_cu_data(DieReader(damaged), offset)


def test_a_number_attribute_held_in_a_block_is_a_dwarf_error() -> None:
    sections, offset = assembled(inline_tree(1), top=[(F.AT_STMT_LIST, F.FORM_BLOCK1, b"\x10\x00")])
    with pytest.raises(DwarfError, match=r"top DIE attribute 0x10 has form 0xa, not a number"):
        build_cu_data(DieReader(sections), offset)


def test_a_line_range_of_zero_is_a_dwarf_error() -> None:
    table = bytearray(line_table(["unit.c"], [(CODE[0], CODE[1], 3)]))
    # unit_length 4, version 2, address and segment selector size 2, header_length 4, then
    # minimum_instruction_length, maximum_operations_per_instruction, default_is_stmt,
    # line_base, line_range (DWARF 5 §6.2.4).
    assert table[16] == 14
    table[16] = 0
    sections = DwarfSections.from_bytes({".debug_line": bytes(table)})
    with pytest.raises(DwarfError, match="line_range is 0"):
        read_line_table(sections, 0, None, "/src", 8)


# -- through the command line -----------------------------------------------------------------


def _damaged_dwarf(work: Path) -> Path:
    """The gcc sample with every unit header claiming 3-byte addresses."""
    data = bytearray(VMLINUX.read_bytes())
    with open_image(VMLINUX) as image:
        section = image.get_section(".debug_info")
        assert section is not None
        offset, units = 0, 0
        while offset < section.size:
            at = section.file_offset + offset
            (length,) = struct.unpack_from("<I", data, at)
            assert struct.unpack_from("<H", data, at + 4)[0] == 5  # DWARF 5: address size at +7
            data[at + 7] = 3
            offset += 4 + length
            units += 1
    assert units > 3
    path = work / "vmlinux-3-byte-addresses"
    path.write_bytes(bytes(data))
    return path


def _arguments(command: str, image: Path, work: Path) -> list[str]:
    with open_image(VMLINUX) as sample:
        symbol = next(s for s in SymbolTable(sample) if s.is_function and s.elf_size > 8)
    frame = f"{symbol.name}+0x4/{symbol.kallsyms_size:#x}"
    (work / "oops.log").write_text(f"Call Trace:\n <TASK>\n {frame}\n </TASK>\n")
    if command == "symbolize":
        return ["symbolize", "--no-cache", str(image), frame.split("/", maxsplit=1)[0]]
    if command == "decode":
        return ["decode", "--no-cache", str(image), str(work / "oops.log")]
    return ["diff", str(VMLINUX), str(image)]


@pytest.mark.parametrize("command", ["symbolize", "decode", "diff"])
def test_malformed_dwarf_is_noted_and_the_rest_goes_on(command: str, tmp_path: Path) -> None:
    # The symbol table still names the frame: symbolize and decode answer with the symbol and
    # note in one line why there are no source lines; a diff goes on without DWARF.
    image = _damaged_dwarf(tmp_path)
    result = CliRunner().invoke(cli, _arguments(command, image, tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    note = "NEW DWARF unusable, skipped: " if command == "diff" else "note: no source lines: "
    assert re.search(
        rf"{note}{re.escape(str(image))}: \.debug_info: unit at 0x[0-9a-f]+ has 3-byte "
        "addresses",
        result.stdout,
    ), result.stdout
    if command == "symbolize":
        assert re.match(r"(\S+)\+0x4  = \1\+0x4 at 0x[0-9a-f]+\n", result.stdout), result.stdout


@pytest.mark.parametrize("command", ["symbolize", "decode", "diff"])
def test_a_bug_in_a_decoder_is_an_internal_error(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_walk(*_arguments: object) -> None:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")

    # Every unit the resolver parses, and every unit of the census, goes through the walk.
    monkeypatch.setattr(info, "walk_dies", broken_walk)
    result = CliRunner().invoke(cli, _arguments(command, VMLINUX, tmp_path))
    assert result.exit_code == EXIT_INTERNAL, result.output
    assert result.stderr.splitlines() == [
        "ltosyms: internal error: TypeError: unsupported operand type(s) for +: 'int' and "
        "'NoneType'"
    ]
