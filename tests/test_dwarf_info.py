"""DIE decoding on units assembled in the test: forms, generated skippers and extractors, the
function tree, names through abstract origins, specifications and cross-unit references,
DWARF 5 indexed strings, addresses and range lists.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from leb128 import sleb, uleb

from ltosyms.dwarf import DwarfConfig, DwarfSections
from ltosyms.dwarf import forms as F
from ltosyms.dwarf.build import build_cu_data
from ltosyms.dwarf.codegen import compile_skipper
from ltosyms.dwarf.extract import FUNCTION_LAYOUT
from ltosyms.dwarf.info import DieReader
from ltosyms.dwarf.unit_map import build_cu_map
from ltosyms.dwarf.units import UnitHeader, read_form
from ltosyms.errors import DwarfError


def encode(form: int, value: Any, offset_size: int = 4) -> bytes:
    """The bytes of one attribute value (DWARF 5 §7.5.6)."""
    fixed = {1: "B", 2: "H", 4: "I", 8: "Q"}
    if form in (F.FORM_FLAG_PRESENT, F.FORM_IMPLICIT_CONST):
        return b""
    if form == F.FORM_INDIRECT:  # the value is given encoded: the real form(s), then the value
        return bytes(value)
    if form == F.FORM_STRING:
        return bytes(value) + b"\0"
    if form in (F.FORM_STRX3, F.FORM_ADDRX3):
        return int(value).to_bytes(3, "little")
    if form == F.FORM_DATA16:
        return bytes(value)
    if form == F.FORM_SDATA:
        return sleb(value)
    if form in F.LEB:
        return uleb(value)
    if form in F.BLOCK_LEB:
        return uleb(len(value)) + bytes(value)
    if form in F.BLOCK_FIXED:
        width = F.BLOCK_FIXED[form]
        return len(value).to_bytes(width, "little") + bytes(value)
    if form in F.OFFSET_SIZED or form == F.FORM_REF_ADDR:
        return struct.pack("<" + fixed[offset_size], value)
    if form == F.FORM_ADDR:
        return struct.pack("<Q", value)
    return struct.pack("<" + fixed[F.FIXED[form]], value)


Spec = tuple[int, int, int]  # attribute, form, implicit constant


@dataclass
class Die:
    tag: int
    attributes: list[tuple[int, int, Any]]  # attribute, form, value (or ("ref", label))
    children: list[Die] = field(default_factory=list)
    label: str | None = None
    sibling: bool = False  # emit DW_AT_sibling (ref4) first, as gcc does


class Assembler:
    """A .debug_info / .debug_abbrev pair from DIE trees, references resolved by label."""

    def __init__(self) -> None:
        self.abbrevs: dict[tuple[Any, ...], int] = {}
        self.abbrev_bytes = bytearray()
        self.info = bytearray()
        self.labels: dict[str, int] = {}
        self.patches: list[tuple[int, str, bool]] = []  # position, label, unit-relative

    def code(self, die: Die) -> tuple[int, list[Spec]]:
        specs: list[Spec] = [(F.AT_SIBLING, F.FORM_REF4, 0)] if die.sibling else []
        for attribute, form, value in die.attributes:
            implicit = value if form == F.FORM_IMPLICIT_CONST else 0
            specs.append((attribute, form, implicit))
        key = (die.tag, bool(die.children), tuple(specs))
        if key not in self.abbrevs:
            number = len(self.abbrevs) + 1
            self.abbrevs[key] = number
            self.abbrev_bytes += uleb(number) + uleb(die.tag) + bytes([bool(die.children)])
            for attribute, form, implicit in specs:
                self.abbrev_bytes += uleb(attribute) + uleb(form)
                if form == F.FORM_IMPLICIT_CONST:
                    self.abbrev_bytes += sleb(implicit)
            self.abbrev_bytes += b"\0\0"
        return self.abbrevs[key], specs

    def unit(self, top: Die) -> int:
        """Append a DWARF 5 compile unit; return its offset."""
        start = len(self.info)
        self.unit_start = start
        self.info += b"\0\0\0\0" + struct.pack("<HBBI", 5, F.UT_COMPILE, 8, 0)
        self.emit(top)
        struct.pack_into("<I", self.info, start, len(self.info) - start - 4)
        return start

    def emit(self, die: Die) -> None:
        if die.label:
            self.labels[die.label] = len(self.info)
        number, _specs = self.code(die)
        self.info += uleb(number)
        sibling_at = len(self.info) if die.sibling else -1
        if die.sibling:
            self.info += b"\0\0\0\0"
        for _attribute, form, value in die.attributes:
            if isinstance(value, tuple) and value[0] == "ref":
                self.patches.append((len(self.info), value[1], form != F.FORM_REF_ADDR))
                self.info += encode(form, 0)
            else:
                self.info += encode(form, value)
        for child in die.children:
            self.emit(child)
        if die.children:
            self.info += b"\0"
        if sibling_at >= 0:
            struct.pack_into("<I", self.info, sibling_at, len(self.info) - self.unit_start)

    def finish(self) -> tuple[bytes, bytes]:
        units = self._unit_starts()
        for position, label, unit_relative in self.patches:
            target = self.labels[label]
            base = max(u for u in units if u <= position) if unit_relative else 0
            struct.pack_into("<I", self.info, position, target - base)
        return bytes(self.info), bytes(self.abbrev_bytes) + b"\0"

    def _unit_starts(self) -> list[int]:
        starts, offset = [], 0
        while offset < len(self.info):
            starts.append(offset)
            offset += 4 + struct.unpack_from("<I", self.info, offset)[0]
        return starts


class Strings:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.offsets: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if text not in self.offsets:
            self.offsets[text] = len(self.data)
            self.data += text.encode() + b"\0"
        return self.offsets[text]


def line_table(files: list[str], sequences: list[tuple[int, int, int]]) -> bytes:
    """A DWARF 5 line table with these file names (directory 0) and, per (start, end, line),
    one sequence whose single row is file 1 at that line."""
    header = bytearray(bytes([1, 1, 1]) + struct.pack("<bBB", -5, 14, 13))
    header += bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
    header += bytes([1]) + uleb(1) + uleb(0x08) + uleb(1) + b"/src\0"
    header += bytes([2]) + uleb(1) + uleb(0x08) + uleb(2) + uleb(0x0B) + uleb(len(files))
    for name in files:
        header += name.encode() + b"\0\0"
    program = bytearray()
    for start, end, line in sequences:
        program += b"\x00\x09\x02" + struct.pack("<Q", start) + b"\x03" + sleb(line - 1)
        program += b"\x01\x02" + uleb(end - start) + b"\x00\x01\x01"
    body = struct.pack("<HBBI", 5, 8, 0, len(header)) + header + program
    return struct.pack("<I", len(body)) + body


def build_image() -> tuple[DwarfSections, dict[str, int]]:
    """Two units: a gcc-like one (strp names, DW_AT_sibling, ranges by offset, implicit
    constants) with an inline tree, and a clang-like one (strx/addrx/rnglistx, no siblings)
    whose functions take their names from the first unit through DW_FORM_ref_addr."""
    strings = Strings()
    asm = Assembler()
    ref = lambda label: ("ref", label)  # noqa: E731
    # .debug_rnglists: header, then (unit 2) an offsets table, then lists.
    rnglists = bytearray(struct.pack("<IHBBI", 0, 5, 8, 0, 1))  # length patched below
    base_unit2 = len(rnglists)
    rnglists += b"\0\0\0\0"  # offset of list 0, relative to base_unit2
    list_0 = len(rnglists)
    struct.pack_into("<I", rnglists, base_unit2, list_0 - base_unit2)
    rnglists += bytes([F.RLE_BASE_ADDRESSX]) + uleb(1)  # base = .debug_addr[1] = 0x5000
    rnglists += bytes([F.RLE_OFFSET_PAIR]) + uleb(0x10) + uleb(0x20)
    rnglists += bytes([F.RLE_STARTX_LENGTH]) + uleb(2) + uleb(0x8)  # 0x6000 + 8
    rnglists += bytes([F.RLE_END_OF_LIST])
    list_hot_cold = len(rnglists)
    rnglists += bytes([F.RLE_OFFSET_PAIR]) + uleb(0x200) + uleb(0x240)  # base: CU low_pc 0
    rnglists += bytes([F.RLE_START_LENGTH]) + struct.pack("<Q", 0x9000) + uleb(0x30)
    rnglists += bytes([F.RLE_END_OF_LIST])
    list_inline = len(rnglists)
    rnglists += bytes([F.RLE_START_END]) + struct.pack("<QQ", 0x210, 0x218)
    rnglists += bytes([F.RLE_BASE_ADDRESS]) + struct.pack("<Q", 0x9000)
    rnglists += bytes([F.RLE_OFFSET_PAIR]) + uleb(0x4) + uleb(0x10)
    rnglists += bytes([F.RLE_END_OF_LIST])
    struct.pack_into("<I", rnglists, 0, len(rnglists) - 4)
    addresses = struct.pack("<IHBB", 4 + 8 * 3, 5, 8, 0) + struct.pack(
        "<QQQ", 0x4000, 0x5000, 0x6000
    )
    str_offsets_entries = ["clang_unit.c", "leaf", "outer"]
    for text in str_offsets_entries:
        strings(text)
    str_offsets = struct.pack("<IHH", 4 + 4 * len(str_offsets_entries), 5, 0) + b"".join(
        struct.pack("<I", strings(t)) for t in str_offsets_entries
    )
    lines = line_table(
        ["gcc_unit.c", "gcc_unit.c", "header.h", "other.h"],
        [(0x200, 0x240, 3), (0x9000, 0x9030, 20)],
    )
    clang_lines_at = len(lines)
    lines += line_table(["clang_unit.c", "clang_unit.c"], [(0x4000, 0x4100, 5)])

    junk_attributes = [  # a type with every kind of skippable form, walked over
        (F.AT_NAME, F.FORM_STRING, b"junk"),
        (0x3E, F.FORM_DATA16, bytes(16)),
        (0x02, F.FORM_EXPRLOC, b"\x91\x10"),
        (0x02, F.FORM_BLOCK1, b"abc"),
        (0x02, F.FORM_BLOCK2, b"de"),
        (0x02, F.FORM_BLOCK4, b"f"),
        (0x1C, F.FORM_SDATA, -129),
        (0x0B, F.FORM_UDATA, 300),
        (0x2C, F.FORM_LOCLISTX, 7),
        (0x6E, F.FORM_STRX3, 0),
    ]
    gcc_unit = Die(
        F.TAG_COMPILE_UNIT,
        [
            (F.AT_NAME, F.FORM_STRP, strings("gcc_unit.c")),
            (F.AT_COMP_DIR, F.FORM_STRP, strings("/src")),
            (F.AT_PRODUCER, F.FORM_STRP, strings("GNU C11 12.2.0")),
            (F.AT_LOW_PC, F.FORM_ADDR, 0),
            (F.AT_RANGES, F.FORM_SEC_OFFSET, list_hot_cold),
            (F.AT_STMT_LIST, F.FORM_SEC_OFFSET, 0),
        ],
        [
            Die(
                0x13,
                [(F.AT_NAME, F.FORM_STRP, strings("big"))],
                sibling=True,
                children=[
                    Die(0x0D, [(F.AT_NAME, F.FORM_STRP, strings("m")), (0x49, F.FORM_REF4, 0)]),
                    Die(0x0D, junk_attributes),
                ],
            ),
            Die(
                F.TAG_SUBPROGRAM,
                [
                    (F.AT_NAME, F.FORM_STRP, strings("inline_fn")),
                    (F.AT_DECL_FILE, F.FORM_IMPLICIT_CONST, 2),
                    (F.AT_DECL_LINE, F.FORM_DATA1, 42),
                    (F.AT_INLINE, F.FORM_DATA1, 3),
                ],
                label="inline_fn",
                sibling=True,
                children=[
                    Die(0x05, [(F.AT_NAME, F.FORM_STRING, b"arg")]),
                ],
            ),
            Die(
                F.TAG_SUBPROGRAM,
                [
                    (F.AT_NAME, F.FORM_STRING, b"decl_fn"),
                    (F.AT_DECL_FILE, F.FORM_DATA1, 3),
                    (F.AT_DECL_LINE, F.FORM_DATA2, 7),
                    (F.AT_DECLARATION, F.FORM_FLAG_PRESENT, 1),
                ],
                label="decl_fn",
            ),
            Die(
                F.TAG_SUBPROGRAM,
                [
                    (F.AT_SPECIFICATION, F.FORM_REF4, ref("decl_fn")),
                    (F.AT_RANGES, F.FORM_SEC_OFFSET, list_hot_cold),
                    (0x40, F.FORM_EXPRLOC, b"\x9c"),
                ],
                sibling=True,
                children=[
                    Die(
                        0x05, [(F.AT_NAME, F.FORM_STRP, strings("p")), (0x02, F.FORM_SEC_OFFSET, 0)]
                    ),
                    Die(
                        F.TAG_LEXICAL_BLOCK,
                        [(F.AT_LOW_PC, F.FORM_ADDR, 0x200), (F.AT_HIGH_PC, F.FORM_DATA8, 0x40)],
                        sibling=True,
                        children=[
                            Die(
                                0x34,
                                [(F.AT_NAME, F.FORM_STRING, b"v"), (0x02, F.FORM_EXPRLOC, b"\x50")],
                            ),
                            Die(
                                F.TAG_INLINED_SUBROUTINE,
                                [
                                    (F.AT_ABSTRACT_ORIGIN, F.FORM_REF4, ref("inline_fn")),
                                    (F.AT_RANGES, F.FORM_SEC_OFFSET, list_inline),
                                    (F.AT_CALL_FILE, F.FORM_DATA1, 1),
                                    (F.AT_CALL_LINE, F.FORM_DATA2, 77),
                                    (F.AT_CALL_COLUMN, F.FORM_DATA1, 5),
                                ],
                                sibling=True,
                                children=[
                                    Die(0x05, [(F.AT_ABSTRACT_ORIGIN, F.FORM_REF4, 0)]),
                                    Die(
                                        F.TAG_INLINED_SUBROUTINE,
                                        [
                                            (
                                                F.AT_ABSTRACT_ORIGIN,
                                                F.FORM_REF_ADDR,
                                                ref("cross_fn"),
                                            ),
                                            (F.AT_LOW_PC, F.FORM_ADDR, 0x9008),
                                            (F.AT_HIGH_PC, F.FORM_DATA4, 4),
                                            (F.AT_CALL_FILE, F.FORM_IMPLICIT_CONST, 2),
                                            (F.AT_CALL_LINE, F.FORM_UDATA, 300),
                                            (F.AT_CALL_COLUMN, F.FORM_DATA1, 9),
                                        ],
                                    ),
                                ],
                            ),
                        ],
                    ),
                    Die(
                        0x48,
                        [(0x7D, F.FORM_ADDR, 0x220)],
                        sibling=True,
                        children=[  # call_site
                            Die(0x49, [(0x02, F.FORM_EXPRLOC, b"\x55")]),
                        ],
                    ),
                ],
            ),
            Die(
                F.TAG_SUBPROGRAM,
                [
                    (F.AT_ABSTRACT_ORIGIN, F.FORM_REF4, ref("inline_fn")),
                    (F.AT_LOW_PC, F.FORM_ADDR, 0x300),
                    (F.AT_HIGH_PC, F.FORM_ADDR, 0x320),  # DWARF 3 style: an address
                ],
                children=[
                    # An inlined call whose code is all inside a call it inlined: it has no
                    # ranges of its own, only DW_AT_entry_pc.
                    Die(
                        F.TAG_INLINED_SUBROUTINE,
                        [
                            (F.AT_ABSTRACT_ORIGIN, F.FORM_REF4, ref("decl_fn")),
                            (0x52, F.FORM_ADDR, 0x308),  # DW_AT_entry_pc
                            (F.AT_CALL_LINE, F.FORM_DATA1, 5),
                        ],
                        children=[
                            Die(
                                F.TAG_INLINED_SUBROUTINE,
                                [
                                    (F.AT_ABSTRACT_ORIGIN, F.FORM_REF_ADDR, ref("cross_fn")),
                                    (F.AT_LOW_PC, F.FORM_ADDR, 0x308),
                                    (F.AT_HIGH_PC, F.FORM_DATA1, 4),
                                    (F.AT_CALL_LINE, F.FORM_DATA1, 6),
                                ],
                            ),
                        ],
                    ),
                ],
            ),
            Die(0x24, [(F.AT_NAME, F.FORM_STRING, b"int"), (0x0B, F.FORM_DATA1, 4)]),
        ],
    )
    clang_unit = Die(
        F.TAG_COMPILE_UNIT,
        [
            (F.AT_PRODUCER, F.FORM_STRING, b"clang version 14.0.6"),
            (F.AT_NAME, F.FORM_STRX1, 0),
            (F.AT_STR_OFFSETS_BASE, F.FORM_SEC_OFFSET, 8),
            (F.AT_STMT_LIST, F.FORM_SEC_OFFSET, clang_lines_at),
            (F.AT_COMP_DIR, F.FORM_STRP, strings("/src")),
            (F.AT_LOW_PC, F.FORM_ADDR, 0),
            (F.AT_RANGES, F.FORM_RNGLISTX, 0),
            (F.AT_ADDR_BASE, F.FORM_SEC_OFFSET, 8),
            (F.AT_RNGLISTS_BASE, F.FORM_SEC_OFFSET, base_unit2),
        ],
        [
            Die(
                0x13,
                [(F.AT_NAME, F.FORM_STRX2, 1)],
                children=[  # no sibling: walked
                    Die(0x0D, [(F.AT_NAME, F.FORM_STRX4, 1)]),
                ],
            ),
            Die(
                F.TAG_SUBPROGRAM,
                [(F.AT_NAME, F.FORM_STRX, 1), (F.AT_INLINE, F.FORM_IMPLICIT_CONST, 1)],
                label="cross_fn",
            ),
            Die(
                F.TAG_SUBPROGRAM,
                [
                    (F.AT_LOW_PC, F.FORM_ADDRX, 0),
                    (F.AT_HIGH_PC, F.FORM_DATA4, 0x100),
                    (F.AT_NAME, F.FORM_STRX1, 2),
                ],
                children=[
                    Die(
                        F.TAG_INLINED_SUBROUTINE,
                        [
                            (F.AT_ABSTRACT_ORIGIN, F.FORM_REF4, ref("cross_fn")),
                            (F.AT_LOW_PC, F.FORM_ADDRX1, 0),
                            (F.AT_HIGH_PC, F.FORM_DATA4, 0x10),
                            (F.AT_CALL_FILE, F.FORM_DATA1, 1),
                            (F.AT_CALL_LINE, F.FORM_DATA1, 12),
                        ],
                    ),
                ],
            ),
        ],
    )
    offsets = {"gcc": asm.unit(gcc_unit), "clang": asm.unit(clang_unit)}
    info, abbrev = asm.finish()
    sections = DwarfSections.from_bytes(
        {
            ".debug_info": info,
            ".debug_abbrev": abbrev,
            ".debug_str": bytes(strings.data),
            ".debug_str_offsets": str_offsets,
            ".debug_addr": addresses,
            ".debug_rnglists": bytes(rnglists),
            ".debug_line": lines,
        },
        DwarfConfig(name="<memory>", lowest_address=0x100, highest_address=0x10000),
    )
    return sections, offsets


@pytest.fixture(scope="module")
def image() -> tuple[DwarfSections, dict[str, int]]:
    return build_image()


def test_function_tree_of_a_gcc_like_unit(image: tuple[DwarfSections, dict[str, int]]) -> None:
    sections, offsets = image
    data = build_cu_data(DieReader(sections), offsets["gcc"])
    assert data.name == "gcc_unit.c" and not data.producer_is_clang
    functions = {f.name: f for f in data.functions()}
    # The declaration gives decl_fn its name (DW_AT_specification); hot and cold parts.
    assert functions["decl_fn"].ranges == ((0x200, 0x240), (0x9000, 0x9030))
    assert functions["decl_fn"].decl_file == "other.h" and functions["decl_fn"].decl_line == 7
    # The out-of-line copy of an inline function takes its name and declaration from the
    # abstract instance; DW_AT_high_pc as an address is an end, not a length.
    assert functions["inline_fn"].ranges == ((0x300, 0x320),)
    assert functions["inline_fn"].decl_file == "header.h"
    assert functions["inline_fn"].decl_line == 42
    chain = data.locations(0x212)
    assert [(c.function, c.file, c.line, c.column, c.inlined) for c in chain] == [
        ("inline_fn", "gcc_unit.c", 3, None, True),  # innermost: the line table's row
        ("decl_fn", "gcc_unit.c", 77, 5, False),  # the call site of inline_fn
    ]
    # Through the second range of the inlined call, into a cross-unit inlined function.
    chain = data.locations(0x900A)
    assert [(c.function, c.line) for c in chain] == [
        ("leaf", 20),
        ("inline_fn", 300),
        ("decl_fn", 77),
    ]
    assert chain[1].file == "header.h"
    # A call with no ranges of its own still shows, as llvm shows it, when a call inside it
    # holds the address.
    assert [(c.function, c.line, c.inlined) for c in data.locations(0x309)] == [
        ("leaf", None, True),
        ("decl_fn", 6, True),
        ("inline_fn", 5, False),
    ]
    assert [c.function for c in data.locations(0x30C)] == ["inline_fn"]
    # Inside decl_fn but outside any inlined call.
    assert [c.function for c in data.locations(0x230)] == ["decl_fn"]
    assert data.locations(0x50) == ()  # no function, no row


def test_clang_like_unit_with_indexed_forms(image: tuple[DwarfSections, dict[str, int]]) -> None:
    sections, offsets = image
    data = build_cu_data(DieReader(sections), offsets["clang"])
    assert data.name == "clang_unit.c" and data.producer_is_clang
    (outer,) = data.functions()
    assert outer.name == "outer" and outer.ranges == ((0x4000, 0x4100),)
    assert [(c.function, c.line) for c in data.locations(0x4004)] == [("leaf", 5), ("outer", 12)]


def test_unit_map_from_top_dies(image: tuple[DwarfSections, dict[str, int]]) -> None:
    sections, offsets = image
    unit_map = build_cu_map(DieReader(sections))
    # No .debug_aranges: each unit's DW_AT_ranges (by offset; by DW_FORM_rnglistx).
    assert unit_map.unit_at(0x210) == offsets["gcc"]
    assert unit_map.unit_at(0x9010) == offsets["gcc"]
    assert unit_map.unit_at(0x5015) == offsets["clang"]
    assert unit_map.unit_at(0x6007) == offsets["clang"]
    assert unit_map.unit_at(0x6008) is None
    assert unit_map.unit_offsets() == sorted(offsets.values())


def test_truncated_unit_is_a_dwarf_error(image: tuple[DwarfSections, dict[str, int]]) -> None:
    sections, offsets = image
    contents = {name: sections.require(name).whole() for name in (".debug_abbrev", ".debug_str")}
    # The first unit's length still claims the bytes cut away.
    contents[".debug_info"] = sections.require(".debug_info").whole()[: offsets["clang"] - 30]
    damaged = DwarfSections.from_bytes(contents)
    with pytest.raises(DwarfError):
        build_cu_data(DieReader(damaged), offsets["gcc"])


# -- every form, generated code against the general reader -------------------------------

SKIPPABLE = sorted(
    form
    for form in F.KNOWN_FORMS
    if form not in (F.FORM_INDIRECT, F.FORM_GNU_REF_ALT, F.FORM_GNU_STRP_ALT)
)


def form_values(form: int) -> st.SearchStrategy[Any]:
    if form == F.FORM_STRING:
        return st.binary(max_size=12).map(lambda b: b.replace(b"\0", b"x"))
    if form in F.BLOCK_LEB or form in F.BLOCK_FIXED:
        return st.binary(max_size=300)
    if form == F.FORM_DATA16:
        return st.binary(min_size=16, max_size=16)
    if form == F.FORM_SDATA:
        return st.integers(-(1 << 40), 1 << 40)
    if form in F.LEB:
        return st.integers(0, 1 << 40)
    if form in (F.FORM_FLAG_PRESENT, F.FORM_IMPLICIT_CONST):
        return st.just(0)
    if form == F.FORM_ADDR:
        return st.integers(0, (1 << 64) - 1)
    size = F.FIXED.get(form, 4)
    return st.integers(0, (1 << (8 * size)) - 1)


attribute_lists = st.lists(
    st.sampled_from(SKIPPABLE).flatmap(lambda form: st.tuples(st.just(form), form_values(form))),
    max_size=12,
)
HEADER = UnitHeader(
    offset=0,
    end=0,
    version=5,
    unit_type=F.UT_COMPILE,
    address_size=8,
    offset_size=4,
    abbrev_offset=0,
    first_die=0,
)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(attribute_lists)
def test_skippers_end_where_the_general_reader_ends(attributes: list[tuple[int, Any]]) -> None:
    data = b"".join(encode(form, value) for form, value in attributes) + b"\xee"
    position = 0
    for form, value in attributes:
        read, position, _form = read_form(data, position, form, 0, HEADER, endian="<")
        if form not in (F.FORM_FLAG_PRESENT, F.FORM_IMPLICIT_CONST):
            assert read == value
    skipper = compile_skipper([f for f, _ in attributes], 4, 8, "<", 5)
    end = skipper if isinstance(skipper, int) else skipper(data, 0)
    assert end == position == len(data) - 1


@settings(derandomize=True, max_examples=100, deadline=None)
@given(
    attribute_lists,
    attribute_lists,
    st.integers(0, (1 << 64) - 1),
    st.integers(0, 65535),
    st.booleans(),
)
def test_extractors_read_the_wanted_attributes_among_any_others(
    before: list[tuple[int, Any]],
    after: list[tuple[int, Any]],
    low_pc: int,
    call_line: int,
    ranges_by_index: bool,
) -> None:
    wanted: list[tuple[int, int, Any]] = [
        (F.AT_LOW_PC, F.FORM_ADDR, low_pc),
        (F.AT_HIGH_PC, F.FORM_UDATA, 0x123),
        (F.AT_CALL_LINE, F.FORM_DATA2, call_line),
        (F.AT_CALL_FILE, F.FORM_IMPLICIT_CONST, 17),
        (F.AT_ABSTRACT_ORIGIN, F.FORM_REF_UDATA, 0x456),
        (F.AT_RANGES, F.FORM_RNGLISTX if ranges_by_index else F.FORM_SEC_OFFSET, 9),
        (F.AT_NAME, F.FORM_STRING, b"fn"),
    ]
    filler = 0x3F  # DW_AT_external: not wanted, any form
    specs = (
        [(filler, f, 0) for f, _ in before]
        + [(a, f, v if f == F.FORM_IMPLICIT_CONST else 0) for a, f, v in wanted]
        + [(filler, f, 0) for f, _ in after]
    )
    data = (
        b"".join(encode(f, v) for f, v in before)
        + b"".join(encode(f, v) for _a, f, v in wanted)
        + b"".join(encode(f, v) for f, v in after)
    )

    class UnitStub:
        base = 0x1000

    extract = FUNCTION_LAYOUT.extractor(specs, 4, 8, "<", 5)
    end, raw = extract(data, 0, UnitStub())
    values = FUNCTION_LAYOUT.record(raw)
    assert end == len(data)
    assert values.low_pc == low_pc
    assert values.high_pc == 0x123 and values.high_is_offset
    assert values.call_line == call_line and values.call_file == 17
    assert values.origin == 0x1456
    assert values.ranges == 9 and values.ranges_is_index == ranges_by_index
    assert values.name == b"fn"
    assert values.decl_file is None
