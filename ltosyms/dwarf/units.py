"""Unit headers, abbreviation tables and unit-level context (string and address tables).

A :class:`Unit` is one ``.debug_info`` unit (DWARF 2-5, 32- and 64-bit) with what its DIEs need
to be read: the abbreviation table compiled for this unit's layout, the bases of its
``.debug_str_offsets`` / ``.debug_addr`` / ``.debug_rnglists`` contributions (DWARF 5 §3.1.1)
and the top DIE's attributes. :class:`UnitIndex` lists every unit offset of an image (a hop over
the unit lengths, no DIE parsed) so that a ``DW_FORM_ref_addr`` anywhere can be mapped to its
unit by bisection.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass
from typing import Any, Protocol

from ltosyms.dwarf import forms as F
from ltosyms.dwarf.codegen import (
    Skipper,
    Spec,
    compile_sibling_reader,
    compile_skipper,
    sibling_offset,
)
from ltosyms.dwarf.extract import FUNCTION_LAYOUT, VARIABLE_LAYOUT, Extractor
from ltosyms.dwarf.forms import read_sleb, read_uleb
from ltosyms.dwarf.sections import DwarfSections, SectionBuffer
from ltosyms.errors import DwarfError

# What the DIE walk does with a DIE, by abbreviation (ltosyms.dwarf.walk). The two walks differ
# only in the actions their tables are compiled with (CompiledAbbrevs, ``whole_program``).
ACT_LEAF_FIXED = 0  # no children, uninteresting, constant size: skip the bytes
ACT_LEAF = 1  # no children, uninteresting, variable size: generated skipper
ACT_JUMP_FIXED = 2  # uninteresting subtree, DW_AT_sibling at a constant offset: jump
ACT_JUMP = 3  # uninteresting subtree, DW_AT_sibling after variable-size attributes
ACT_ENTER_FIXED = 4  # children to walk (lexical block, or no sibling), constant size
ACT_ENTER = 5  # same, variable size
ACT_INLINED = 6  # inlined subroutine: a node inside the function holding it
ACT_FUNCTION = 7  # unit walk: subprogram with code, a tree root (nested or not)
ACT_NAME = 8  # unit walk: subprogram without code (abstract instance, declaration): names only
ACT_SUBPROGRAM = 9  # whole-program walk: any subprogram, a node where it is nested
ACT_VARIABLE = 10  # whole-program walk: variable with a location expression


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitHeader:
    """A unit header (DWARF 5 §7.5.1; DWARF 2-4 §7.5.1.1 of their standards)."""

    offset: int  # .debug_info offset of the header
    end: int  # offset just past the unit
    version: int
    unit_type: int
    address_size: int
    offset_size: int  # 4 for 32-bit DWARF, 8 for 64-bit
    abbrev_offset: int
    first_die: int  # .debug_info offset of the unit's top DIE


def read_unit_header(info: SectionBuffer, offset: int, endian: str) -> UnitHeader:
    try:
        head = info.peek(offset, 40)
        (length,) = struct.unpack_from(endian + "I", head, 0)
        position = 4
        offset_size = 4
        if length == 0xFFFFFFFF:
            (length,) = struct.unpack_from(endian + "Q", head, 4)
            position = 12
            offset_size = 8
        end = offset + position + length
        (version,) = struct.unpack_from(endian + "H", head, position)
        position += 2
        offset_format = endian + ("I" if offset_size == 4 else "Q")
        if version >= 5:
            unit_type = head[position]
            address_size = head[position + 1]
            (abbrev_offset,) = struct.unpack_from(offset_format, head, position + 2)
            position += 2 + offset_size
            if unit_type in (F.UT_SKELETON, F.UT_SPLIT_COMPILE):
                position += 8  # dwo_id
            elif unit_type in (F.UT_TYPE, F.UT_SPLIT_TYPE):
                position += 8 + offset_size  # type_signature, type_offset
        elif version >= 2:
            unit_type = F.UT_COMPILE
            (abbrev_offset,) = struct.unpack_from(offset_format, head, position)
            address_size = head[position + offset_size]
            position += offset_size + 1
        else:
            raise DwarfError(f"{info.name}: unit at {offset:#x} has DWARF version {version}")
    except (struct.error, IndexError):
        raise DwarfError(f"{info.name}: truncated unit header at {offset:#x}") from None
    if version > 5:
        raise DwarfError(f"{info.name}: unit at {offset:#x} has DWARF version {version}")
    if address_size not in (4, 8):
        # The readers take 4- and 8-byte addresses (32- and 64-bit targets; DWARF 5 §7.5.1.1).
        raise DwarfError(f"{info.name}: unit at {offset:#x} has {address_size}-byte addresses")
    if end > info.size or length < position - 4:
        raise DwarfError(f"{info.name}: unit at {offset:#x} runs past the section")
    return UnitHeader(
        offset=offset,
        end=end,
        version=version,
        unit_type=unit_type,
        address_size=address_size,
        offset_size=offset_size,
        abbrev_offset=abbrev_offset,
        first_die=offset + position,
    )


class UnitIndex:
    """The offset of every unit in ``.debug_info``, found by hopping over unit lengths."""

    def __init__(self, sections: DwarfSections) -> None:
        info = sections.require(".debug_info")
        size = info.size
        unpack32 = struct.Struct(sections.endian + "I").unpack_from
        unpack64 = struct.Struct(sections.endian + "Q").unpack_from
        offsets: list[int] = []
        offset = 0
        try:
            while offset + 4 <= size:
                head = info.peek(offset, 12)
                (length,) = unpack32(head, 0)
                if length == 0xFFFFFFFF:
                    (length,) = unpack64(head, 4)
                    length += 8
                offsets.append(offset)
                offset += 4 + length
        except struct.error:
            raise DwarfError(".debug_info unit lengths are corrupt") from None
        if offset > size:
            raise DwarfError("the last .debug_info unit runs past the section")
        self.offsets = offsets

    def unit_containing(self, info_offset: int) -> int:
        """The offset of the unit holding the DIE at ``info_offset``."""
        position = bisect.bisect_right(self.offsets, info_offset) - 1
        if position < 0:
            raise DwarfError(f"DIE offset {info_offset:#x} precedes the first unit")
        return self.offsets[position]


@dataclass(slots=True)
class Abbrev:
    code: int
    tag: int
    has_children: bool
    specs: tuple[Spec, ...]


def parse_abbrev_table(
    abbrev: SectionBuffer, offset: int, stop_at: int | None = None
) -> dict[int, Abbrev]:
    """The abbreviation table at ``offset`` of ``.debug_abbrev`` (DWARF 5 §7.5.3); with
    ``stop_at``, only as far as the abbreviation with that code (enough for a unit's top DIE,
    which nearly always uses the first one)."""
    window = 1024 if stop_at is not None else 16384
    while True:
        data = abbrev.read_to_end(offset, window)
        try:
            return _parse_abbrevs(data, stop_at)
        except IndexError:
            if len(data) < window:
                raise DwarfError(f".debug_abbrev: table at {offset:#x} is truncated") from None
            window *= 4


def _parse_abbrevs(data: bytes, stop_at: int | None) -> dict[int, Abbrev]:
    # One- and two-byte ULEB128s are read inline: abbreviation tables are mostly made of them
    # (gcc gives every unit its own table, a few hundred declarations each).
    table: dict[int, Abbrev] = {}
    position = 0
    known = F.KNOWN_FORMS
    while True:
        code = data[position]
        position += 1
        if code > 127:
            code, position = read_uleb(data, position - 1)
        if code == 0:
            return table
        tag = data[position]
        position += 1
        if tag > 127:
            tag, position = read_uleb(data, position - 1)
        has_children = data[position] != 0
        position += 1
        specs: list[Spec] = []
        while True:
            attribute = data[position]
            position += 1
            if attribute > 127:
                attribute, position = read_uleb(data, position - 1)
            form = data[position]
            position += 1
            if form > 127:
                form, position = read_uleb(data, position - 1)
            if form == F.FORM_IMPLICIT_CONST:
                implicit, position = read_sleb(data, position)
                specs.append((attribute, form, implicit))
                continue
            if not form:
                if not attribute:
                    break
                raise DwarfError(f".debug_abbrev: attribute {attribute:#x} without a form")
            if form not in known:
                raise DwarfError(f".debug_abbrev: unknown form {form:#x} in abbreviation {code}")
            specs.append((attribute, form, 0))
        table[code] = Abbrev(code=code, tag=tag, has_children=has_children, specs=tuple(specs))
        if code == stop_at:
            return table


# How the walker handles one abbreviation: (action, fixed size, skipper, sibling offset,
# sibling reader, extractor). Shared by every unit with the same declaration and layout.
Plan = tuple[int, int, "Skipper | None", int, Any, "Extractor | None"]
_plans: dict[tuple[Any, ...], Plan] = {}
_MAX_ABBREV_CODE = 1 << 20


class CompiledAbbrevs:
    """An abbreviation table turned into per-code lists the DIE walker indexes directly.

    Compiled for the unit walk (what the resolver keeps of a unit), or with ``whole_program``
    for the census: every subprogram is a node, with or without code (``ACT_SUBPROGRAM``), and
    variables whose DW_AT_location is an expression are read too (``ACT_VARIABLE``)."""

    __slots__ = (
        "action",
        "children",
        "extract",
        "fixed",
        "sibling_at",
        "sibling_read",
        "skip",
        "table",
    )

    def __init__(
        self,
        table: dict[int, Abbrev],
        header: UnitHeader,
        endian: str,
        *,
        whole_program: bool = False,
    ) -> None:
        size = max(table, default=0) + 1
        if size > _MAX_ABBREV_CODE:
            # Real tables number their declarations from 1 (a few thousand at most); a huge
            # code is damage, and the per-code lists below would not fit in memory.
            raise DwarfError(f".debug_abbrev: abbreviation code {size - 1} is implausible")
        self.table = table
        self.action: list[int] = [-1] * size
        self.children: list[bool] = [False] * size
        self.fixed: list[int] = [0] * size
        self.skip: list[Skipper | None] = [None] * size
        self.sibling_at: list[int] = [0] * size
        self.sibling_read: list[Any] = [None] * size
        self.extract: list[Extractor | None] = [None] * size
        layout = (header.offset_size, header.address_size, endian, header.version)
        for code, abbrev in table.items():
            # The mode changes only the plans of subprograms and variables: other plans are
            # shared by both.
            per_mode = whole_program and abbrev.tag in (F.TAG_SUBPROGRAM, F.TAG_VARIABLE)
            key = (abbrev.tag, abbrev.has_children, abbrev.specs, *layout, per_mode)
            plan = _plans.get(key)
            if plan is None:
                plan = _plans[key] = _plan(abbrev, layout, whole_program)
            self.children[code] = abbrev.has_children
            (
                self.action[code],
                self.fixed[code],
                self.skip[code],
                self.sibling_at[code],
                self.sibling_read[code],
                self.extract[code],
            ) = plan


def _plan(abbrev: Abbrev, layout: tuple[int, int, str, int], whole_program: bool = False) -> Plan:
    offset_size, address_size, endian, version = layout
    specs = abbrev.specs
    attributes = {a for a, _, _ in specs}
    if abbrev.tag in (F.TAG_SUBPROGRAM, F.TAG_INLINED_SUBROUTINE):
        extract = FUNCTION_LAYOUT.extractor(specs, *layout)
        has_code = F.AT_LOW_PC in attributes or F.AT_RANGES in attributes
        if abbrev.tag == F.TAG_INLINED_SUBROUTINE:
            return (ACT_INLINED, 0, None, 0, None, extract)
        if whole_program:
            return (ACT_SUBPROGRAM, 0, None, 0, None, extract)
        if has_code:
            return (ACT_FUNCTION, 0, None, 0, None, extract)
        return (ACT_NAME, 0, None, 0, None, extract)
    if whole_program and abbrev.tag == F.TAG_VARIABLE and _has_location_expression(specs):
        return (ACT_VARIABLE, 0, None, 0, None, VARIABLE_LAYOUT.extractor(specs, *layout))
    skipper = compile_skipper([f for _, f, _ in specs], *layout)
    fixed = skipper if isinstance(skipper, int) else 0
    skip = None if isinstance(skipper, int) else skipper
    is_fixed = skip is None
    if not abbrev.has_children:
        return (ACT_LEAF_FIXED if is_fixed else ACT_LEAF, fixed, skip, 0, None, None)
    if abbrev.tag not in F.DESCEND_TAGS and _sibling_form(specs) in F.UNIT_REF_FORMS:
        located = sibling_offset(specs, offset_size, address_size, version)
        if located is not None:
            letter = {1: "B", 2: "H", 4: "I", 8: "Q"}[located[1]]
            reader = struct.Struct(endian + letter).unpack_from
            return (ACT_JUMP_FIXED, fixed, skip, located[0], reader, None)
        sibling = compile_sibling_reader(specs, *layout)
        return (ACT_JUMP, fixed, skip, 0, sibling, None)
    return (ACT_ENTER_FIXED if is_fixed else ACT_ENTER, fixed, skip, 0, None, None)


def _sibling_form(specs: tuple[Spec, ...]) -> int | None:
    # DW_AT_sibling is a reference into the unit (DWARF 5 §2.3). In any other form (damaged
    # data) there is no subtree end to jump to: the walk goes through the children instead.
    return next((form for attribute, form, _implicit in specs if attribute == F.AT_SIBLING), None)


def _has_location_expression(specs: tuple[Spec, ...]) -> bool:
    # A block-form location is an expression (DW_OP_addr for a static variable); other forms
    # are location lists, which only locals have.
    return any(
        attribute == F.AT_LOCATION and (form in F.BLOCK_LEB or form in F.BLOCK_FIXED)
        for attribute, form, _implicit in specs
    )


class AbbrevSource(Protocol):
    def compiled_abbrevs(
        self, header: UnitHeader, whole_program: bool = False
    ) -> CompiledAbbrevs: ...
    def abbrev(self, header: UnitHeader, code: int) -> Abbrev | None: ...


class Unit:
    """One unit, ready to have its DIEs read: header, top DIE, bases; its abbreviations are
    compiled on first use (reading only the top DIE, as the unit map does, needs just one)."""

    def __init__(self, sections: DwarfSections, header: UnitHeader, source: AbbrevSource) -> None:
        self.sections = sections
        self.header = header
        self.base = header.offset
        self._source = source
        self.endian = sections.endian
        self.strp = sections.strings.get
        self.line_strp = sections.line_strings.get
        str_offsets = sections.get(".debug_str_offsets")
        addresses = sections.get(".debug_addr")
        self._str_offsets = str_offsets.whole() if str_offsets is not None else None
        self._addr = addresses.whole() if addresses is not None else None
        self._offset_format = struct.Struct(self.endian + ("I" if header.offset_size == 4 else "Q"))
        self._address_format = struct.Struct(
            self.endian + ("Q" if header.address_size == 8 else "I")
        )
        # DWARF 5 §7.26/§7.27: without a base attribute, the first contribution starts right
        # after its header (8 bytes for 32-bit DWARF, 16 for 64-bit).
        self.str_offsets_base = 2 * header.offset_size
        self.addr_base = 2 * header.offset_size
        self.rnglists_base: int | None = None
        self.top: dict[int, tuple[int, Any]] = {}
        self.top_tag = 0
        self.top_has_children = False
        self.children_start = header.first_die

    @property
    def abbrevs(self) -> CompiledAbbrevs:
        # Not kept here: the reader keeps the recently used tables (units outlive them).
        return self._source.compiled_abbrevs(self.header)

    # -- the top DIE ------------------------------------------------------------------------

    def read_top(self, data: bytes, data_base: int) -> None:
        """Read the unit DIE from ``data`` (bytes of .debug_info starting at ``data_base``)."""
        position = self.header.first_die - data_base
        code, position = read_uleb(data, position)
        if code == 0:
            return
        abbrev = self._source.abbrev(self.header, code)
        if abbrev is None:
            raise DwarfError(f"unit at {self.base:#x}: top DIE uses unknown abbreviation {code}")
        values, position = read_attributes(data, position, abbrev.specs, self.header, self.endian)
        self.top = values
        self.top_tag = abbrev.tag
        self.top_has_children = abbrev.has_children
        self.children_start = data_base + position
        str_offsets_base = self.top_constant(F.AT_STR_OFFSETS_BASE)
        if str_offsets_base is not None:
            self.str_offsets_base = str_offsets_base
        for attribute in (F.AT_ADDR_BASE, F.AT_GNU_ADDR_BASE):  # the GNU one wins
            addr_base = self.top_constant(attribute)
            if addr_base is not None:
                self.addr_base = addr_base
        self.rnglists_base = self.top_constant(F.AT_RNGLISTS_BASE)

    def top_constant(self, attribute: int) -> int | None:
        """An attribute of the top DIE that holds a number (an offset into another section,
        a base, a constant); None when absent. Any other value (a block, a string) is damage:
        :class:`DwarfError`."""
        entry = self.top.get(attribute)
        if entry is None:
            return None
        form, value = entry
        if not isinstance(value, int) or value < 0:
            raise DwarfError(
                f"unit at {self.base:#x}: top DIE attribute {attribute:#x} has form {form:#x}, "
                "not a number"
            )
        return value

    def top_string(self, attribute: int) -> str | None:
        entry = self.top.get(attribute)
        return None if entry is None else self.form_string(*entry)

    def top_address(self, attribute: int) -> int | None:
        entry = self.top.get(attribute)
        if entry is None:
            return None
        form, value = entry
        if form in F.ADDRX_FORMS:
            return self.addrx(value)
        return int(value) if isinstance(value, int) else None

    def form_string(self, form: int, value: Any) -> str | None:
        if form == F.FORM_STRING:
            return bytes(value).decode("utf-8", "replace")
        if form == F.FORM_STRP:
            return self.strp(value)
        if form == F.FORM_LINE_STRP:
            return self.line_strp(value)
        if form in F.STRX_FORMS:
            return self.strx(value)
        return None

    # -- UnitStrings -------------------------------------------------------------------------

    def strx(self, index: int) -> str | None:
        """String ``index`` of the unit's ``.debug_str_offsets`` contribution (DWARF 5 §7.26)."""
        if self._str_offsets is None:
            return None
        try:
            (offset,) = self._offset_format.unpack_from(
                self._str_offsets, self.str_offsets_base + index * self.header.offset_size
            )
        except (struct.error, OverflowError):  # past the section; OverflowError: far past
            raise DwarfError(f"string index {index} outside .debug_str_offsets") from None
        return self.strp(offset)

    def addrx(self, index: int) -> int | None:
        """Address ``index`` of the unit's ``.debug_addr`` contribution (DWARF 5 §7.27)."""
        if self._addr is None:
            return None
        try:
            (value,) = self._address_format.unpack_from(
                self._addr, self.addr_base + index * self.header.address_size
            )
        except (struct.error, OverflowError):  # past the section; OverflowError: far past
            raise DwarfError(f"address index {index} outside .debug_addr") from None
        assert isinstance(value, int)
        return value


_UNSIGNED = {1: "B", 2: "H", 4: "I", 8: "Q"}


def read_attributes(
    data: bytes, position: int, specs: tuple[Spec, ...], header: UnitHeader, endian: str
) -> tuple[dict[int, tuple[int, Any]], int]:
    """Every attribute of one DIE as ``{attribute: (form, raw value)}`` (the slow, general
    reader: used for unit DIEs, where bases must be known before strings can be read)."""
    values: dict[int, tuple[int, Any]] = {}
    for attribute, declared_form, implicit in specs:
        value, position, form = read_form(
            data, position, declared_form, implicit, header, endian=endian
        )
        values[attribute] = (form, value)
    return values, position


def read_form(
    data: bytes, position: int, form: int, implicit: int, header: UnitHeader, *, endian: str
) -> tuple[Any, int, int]:
    """The raw value of one attribute: (value, new position, form after DW_FORM_indirect)."""
    while form == F.FORM_INDIRECT:
        form, position = read_uleb(data, position)
    if form == F.FORM_IMPLICIT_CONST:
        return implicit, position, form
    if form == F.FORM_FLAG_PRESENT:
        return 1, position, form
    size: int | None
    if form in F.FIXED:
        size = F.FIXED[form]
    elif form in F.OFFSET_SIZED:
        size = header.offset_size
    elif form == F.FORM_ADDR:
        size = header.address_size
    elif form == F.FORM_REF_ADDR:
        size = header.address_size if header.version <= 2 else header.offset_size
    else:
        size = None
    if size is not None:
        if size == 16:
            return bytes(data[position : position + 16]), position + 16, form
        if size == 3:
            chunk = data[position : position + 3]
            value = int.from_bytes(chunk, "little" if endian == "<" else "big")
            return value, position + 3, form
        fmt = _UNSIGNED.get(size)
        if fmt is None:  # an address size no header of ours has (a line table's is any byte)
            raise DwarfError(f"form {form:#x} of {size} bytes is not supported")
        (value,) = struct.unpack_from(endian + fmt, data, position)
        return value, position + size, form
    if form == F.FORM_SDATA:
        value, position = read_sleb(data, position)
        return value, position, form
    if form in F.LEB:
        value, position = read_uleb(data, position)
        return value, position, form
    if form == F.FORM_STRING:
        end = data.index(0, position)
        return bytes(data[position:end]), end + 1, form
    if form in F.BLOCK_LEB:
        length, position = read_uleb(data, position)
    elif form in F.BLOCK_FIXED:
        width = F.BLOCK_FIXED[form]
        length = int.from_bytes(
            data[position : position + width], "little" if endian == "<" else "big"
        )
        position += width
    else:
        raise DwarfError(f"unknown DWARF form {form:#x}")
    return bytes(data[position : position + length]), position + length, form
