"""A whole-image pass over DWARF: every out-of-line function and every inlined instance.

Questions about one address go CU by CU (DOMAIN §7). A diff of two builds asks about *all*
functions at once: where each out-of-line copy came from (name, declaring file, compilation
unit) and how many times each function was inlined, into which callers. That needs one linear
walk of ``.debug_info``, which pyelftools cannot do fast enough on a 160 MB section (it builds an
object per attribute). This module decodes DIEs directly from the section bytes:

- abbreviation declarations are compiled once per table into *skip plans*: an abbreviation whose
  attributes all have fixed-size forms is skipped with one addition, others with a short list
  of steps (DWARF 5 §7.5.6 form classes); only the tags we need are fully decoded;
- subtrees of types are jumped over with ``DW_AT_sibling`` when the producer emits it (gcc);
- names behind ``DW_AT_abstract_origin`` / ``DW_AT_specification`` are resolved inside the unit
  when the unit ends, and across units (gcc LTO's ``<artificial>`` units, ``DW_FORM_ref_addr``)
  by reading the one referenced DIE;
- large sections are split by compilation unit over worker processes.

Only DWARF 2-5 in 32- or 64-bit format with 8-byte addresses is decoded (x86-64, arm64
kernels). Malformed DWARF raises :class:`ltosyms.errors.InputError`.
"""

from __future__ import annotations

import bisect
import logging
import multiprocessing
import os
import posixpath
import struct
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ltosyms.elf.image import KernelImage
from ltosyms.errors import InputError

log = logging.getLogger(__name__)

# DWARF 5 §7.5.4 tags and §7.5.4 attribute codes used here.
TAG_COMPILE_UNIT = 0x11
TAG_PARTIAL_UNIT = 0x3C
TAG_SUBPROGRAM = 0x2E
TAG_INLINED_SUBROUTINE = 0x1D
TAG_VARIABLE = 0x34

AT_SIBLING = 0x01
AT_LOCATION = 0x02
AT_NAME = 0x03
AT_STMT_LIST = 0x10
AT_LOW_PC = 0x11
AT_HIGH_PC = 0x12
AT_COMP_DIR = 0x1B
AT_ABSTRACT_ORIGIN = 0x31
AT_DECL_FILE = 0x3A
AT_DECLARATION = 0x3C
AT_SPECIFICATION = 0x47
AT_RANGES = 0x55
AT_LINKAGE_NAME = 0x6E
AT_MIPS_LINKAGE_NAME = 0x2007
AT_STR_OFFSETS_BASE = 0x72
AT_ADDR_BASE = 0x73
AT_RNGLISTS_BASE = 0x74

_WANTED = {
    TAG_COMPILE_UNIT: frozenset(
        {
            AT_NAME,
            AT_STMT_LIST,
            AT_LOW_PC,
            AT_COMP_DIR,
            AT_STR_OFFSETS_BASE,
            AT_ADDR_BASE,
            AT_RNGLISTS_BASE,
        }
    ),
    TAG_SUBPROGRAM: frozenset(
        {
            AT_NAME,
            AT_LOW_PC,
            AT_HIGH_PC,
            AT_RANGES,
            AT_ABSTRACT_ORIGIN,
            AT_SPECIFICATION,
            AT_DECL_FILE,
            AT_LINKAGE_NAME,
            AT_MIPS_LINKAGE_NAME,
            AT_DECLARATION,
        }
    ),
    TAG_INLINED_SUBROUTINE: frozenset({AT_ABSTRACT_ORIGIN}),
    TAG_VARIABLE: frozenset({AT_LOCATION, AT_NAME, AT_SPECIFICATION, AT_ABSTRACT_ORIGIN}),
}
_WANTED[TAG_PARTIAL_UNIT] = _WANTED[TAG_COMPILE_UNIT]
# Tags whose children may hold functions, inlined instances or static variables. Children of
# any other tag (structures, enumerations, subroutine types ...) are skipped.
_DESCEND = frozenset(
    {TAG_COMPILE_UNIT, TAG_PARTIAL_UNIT, TAG_SUBPROGRAM, TAG_INLINED_SUBROUTINE, 0x0B, 0x39}
)  # 0x0b lexical_block, 0x39 namespace

# Form codes (DWARF 5 §7.5.6, Table 7.6) with their size in bytes; None = variable size.
# Offset-sized forms are marked "O", address-sized "A".
# fmt: off
_FORM_SIZE: dict[int, int | str | None] = {
    0x01: "A", 0x03: None, 0x04: None, 0x05: 2, 0x06: 4, 0x07: 8, 0x08: None, 0x09: None,
    0x0A: None, 0x0B: 1, 0x0C: 1, 0x0D: None, 0x0E: "O", 0x0F: None, 0x10: "O", 0x11: 1,
    0x12: 2, 0x13: 4, 0x14: 8, 0x15: None, 0x16: None, 0x17: "O", 0x18: None, 0x19: 0,
    0x1A: None, 0x1B: None, 0x1C: 4, 0x1D: "O", 0x1E: 16, 0x1F: "O", 0x20: 8, 0x21: 0,
    0x22: None, 0x23: None, 0x24: 8, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2,
    0x2B: 3, 0x2C: 4,
    0x1F01: None, 0x1F02: None, 0x1F20: "O", 0x1F21: "O",  # GNU split-DWARF / dwz forms
}
# fmt: on
FORM_ADDR, FORM_STRING, FORM_STRP, FORM_LINE_STRP = 0x01, 0x08, 0x0E, 0x1F
FORM_REF_ADDR, FORM_IMPLICIT_CONST, FORM_INDIRECT = 0x10, 0x21, 0x16
FORM_STRX, FORM_ADDRX, FORM_RNGLISTX, FORM_SEC_OFFSET = 0x1A, 0x1B, 0x23, 0x17
_STRX_FORMS = {0x1A: 0, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4}  # value: fixed width (0 = uleb)
_ADDRX_FORMS = {0x1B: 0, 0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4}
_REF_FORMS = {0x11, 0x12, 0x13, 0x14, 0x15}  # unit-relative references
_ADDRESS_FORMS = {FORM_ADDR, *_ADDRX_FORMS}

DW_OP_ADDR, DW_OP_ADDRX = 0x03, 0xA1
PARALLEL_THRESHOLD = 48 << 20  # bytes of .debug_info above which units go to worker processes


# -- public records ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DwarfFunction:
    """One out-of-line function (a ``DW_TAG_subprogram`` with code).

    ``unit`` is the compilation unit that declares the function (for gcc LTO's ``<artificial>``
    units, the unit of the abstract origin), as a source-relative path like ``kernel/fork.c``.
    """

    name: str
    linkage_name: str | None
    decl_file: str | None
    unit: str
    low_pc: int
    ranges: tuple[tuple[int, int], ...]  # [start, end) link addresses

    @property
    def key(self) -> tuple[str, str | None]:
        return (self.name, self.decl_file)


@dataclass(frozen=True, slots=True)
class InlinedFunction:
    """Every inlined instance of one function (``DW_TAG_inlined_subroutine`` DIEs).

    ``callers`` gives, per out-of-line function holding instances, its ``low_pc`` (a link
    address, to be named with the symbol table) and how many instances it holds.
    """

    name: str
    decl_file: str | None
    count: int
    callers: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class DwarfVariable:
    name: str
    unit: str
    link_address: int


class DwarfCensus:
    """The result of :func:`take_census`: functions by address, inlined instances by function."""

    def __init__(
        self,
        functions: list[DwarfFunction],
        inlined: dict[tuple[str, str | None], InlinedFunction],
        variables: list[DwarfVariable],
        source_root: str,
        unit_count: int,
    ) -> None:
        self.functions = functions
        self.inlined = inlined
        self.variables = variables
        self.source_root = source_root
        self.unit_count = unit_count
        spans = sorted(
            (start, end, index)
            for index, function in enumerate(functions)
            for start, end in function.ranges
            if end > start
        )
        self._span_starts = [span[0] for span in spans]
        self._spans = spans
        self._variables_by_address = {v.link_address: v for v in variables}
        self._inlined_by_name: dict[str, list[InlinedFunction]] = {}
        for record in inlined.values():
            self._inlined_by_name.setdefault(record.name, []).append(record)

    def function_at(self, link_address: int) -> DwarfFunction | None:
        """The out-of-line function whose code holds ``link_address`` (range starts win)."""
        position = bisect.bisect_right(self._span_starts, link_address) - 1
        best: DwarfFunction | None = None
        # Spans do not nest for C, but zero-length or overlapping junk does occur: look back a
        # little for the innermost span holding the address.
        for candidate in range(position, max(position - 4, -1), -1):
            start, end, index = self._spans[candidate]
            if start <= link_address < end:
                function = self.functions[index]
                if start == link_address:
                    return function
                best = best or function
        return best

    def variable_at(self, link_address: int) -> DwarfVariable | None:
        return self._variables_by_address.get(link_address)

    def inlined_instances(self, name: str, decl_file: str | None) -> InlinedFunction | None:
        """Inlined instances of the function ``name`` declared in ``decl_file``; when the file
        is unknown or differs between builds, the name alone if it is unambiguous."""
        record = self.inlined.get((name, decl_file))
        if record is not None:
            return record
        candidates = self._inlined_by_name.get(name, [])
        return candidates[0] if len(candidates) == 1 else None


# -- entry point -------------------------------------------------------------------------------


def take_census(image: KernelImage, workers: int | None = None) -> DwarfCensus:
    """Walk all of ``.debug_info`` once. :class:`InputError` if the image has no DWARF."""
    sections = _load_sections(image)
    units = _unit_headers(sections)
    if workers is None:
        workers = os.cpu_count() or 1
    batches = _split(units, workers if len(sections.info) > PARALLEL_THRESHOLD else 1)
    if len(batches) > 1 and "fork" in multiprocessing.get_all_start_methods():
        _FORKED["sections"] = sections  # inherited by the forked workers, not pickled
        try:
            context = multiprocessing.get_context("fork")
            with context.Pool(len(batches)) as pool:
                results = pool.map(_scan_batch_in_worker, batches)
        except OSError as error:  # no processes to be had: the same work in this one
            log.info("DWARF census without worker processes: %s", error)
            results = [_scan_units(sections, batch) for batch in batches]
        finally:
            _FORKED.clear()
    else:
        results = [_scan_units(sections, batch) for batch in batches]
    return _assemble(sections, units, results)


# -- sections and unit headers -----------------------------------------------------------------


@dataclass(slots=True)
class _Sections:
    info: bytes
    abbrev: bytes
    str: bytes
    line_str: bytes
    str_offsets: bytes
    addr: bytes
    line: bytes
    ranges: bytes
    rnglists: bytes
    little_endian: bool


def _load_sections(image: KernelImage) -> _Sections:
    def blob(name: str) -> bytes:
        section = image.get_section(name)
        return image.section_bytes(section) if section is not None else b""

    if not image.has_dwarf():
        raise InputError(f"{image.path}: has no DWARF (.debug_info)")
    if image.is_module:
        # ET_REL DWARF is only usable with its relocations applied (DOMAIN §5); the census
        # reads section bytes as they are, which is right for a linked vmlinux only.
        raise InputError(f"{image.path}: the DWARF census reads vmlinux files, not modules")
    if not image.little_endian:
        raise InputError(f"{image.path}: big-endian DWARF is not supported")
    return _Sections(
        info=blob(".debug_info"),
        abbrev=blob(".debug_abbrev"),
        str=blob(".debug_str"),
        line_str=blob(".debug_line_str"),
        str_offsets=blob(".debug_str_offsets"),
        addr=blob(".debug_addr"),
        line=blob(".debug_line"),
        ranges=blob(".debug_ranges"),
        rnglists=blob(".debug_rnglists"),
        little_endian=True,
    )


@dataclass(frozen=True, slots=True)
class _UnitHeader:
    offset: int  # of the unit header
    die_offset: int  # of the first DIE
    end: int
    version: int
    offset_size: int
    address_size: int
    abbrev_offset: int


def _unit_headers(sections: _Sections) -> list[_UnitHeader]:
    """Every unit header in ``.debug_info`` (DWARF 5 §7.5.1)."""
    info = sections.info
    units = []
    offset = 0
    try:
        while offset + 11 <= len(info):
            (length,) = struct.unpack_from("<I", info, offset)
            offset_size, start = 4, offset + 4
            if length == 0xFFFFFFFF:
                (length,) = struct.unpack_from("<Q", info, offset + 4)
                offset_size, start = 8, offset + 12
            end = start + length
            (version,) = struct.unpack_from("<H", info, start)
            offset_format = "<I" if offset_size == 4 else "<Q"
            if version >= 5:
                unit_type, address_size = info[start + 2], info[start + 3]
                (abbrev_offset,) = struct.unpack_from(offset_format, info, start + 4)
                die_offset = start + 4 + offset_size
                if unit_type in (2, 6):  # DW_UT_type, DW_UT_split_type: signature + offset
                    die_offset += 8 + offset_size
                elif unit_type in (4, 5):  # DW_UT_skeleton, DW_UT_split_compile: dwo_id
                    die_offset += 8
            elif version >= 2:
                (abbrev_offset,) = struct.unpack_from(offset_format, info, start + 2)
                address_size = info[start + 2 + offset_size]
                die_offset = start + 3 + offset_size
            else:
                raise InputError(f".debug_info unit at {offset:#x}: DWARF version {version}")
            if address_size != 8:
                raise InputError(f".debug_info unit at {offset:#x}: {address_size}-byte addresses")
            if end > len(info):
                raise InputError(f".debug_info unit at {offset:#x} runs past the section end")
            units.append(
                _UnitHeader(
                    offset, die_offset, end, version, offset_size, address_size, abbrev_offset
                )
            )
            offset = end
    except struct.error:
        raise InputError(f".debug_info is truncated at unit {offset:#x}") from None
    return units


def _split(units: list[_UnitHeader], parts: int) -> list[list[_UnitHeader]]:
    """Cut the unit list into ``parts`` runs of about equal bytes."""
    if parts <= 1 or len(units) < 2:
        return [units]
    total = sum(u.end - u.offset for u in units)
    share = total / parts
    batches: list[list[_UnitHeader]] = [[]]
    filled = 0
    for unit in units:
        if filled >= share * len(batches) and len(batches) < parts:
            batches.append([])
        batches[-1].append(unit)
        filled += unit.end - unit.offset
    return [batch for batch in batches if batch]


# -- abbreviations -----------------------------------------------------------------------------


@dataclass(slots=True)
class _Abbrev:
    tag: int
    has_children: bool
    fixed_size: int | None  # bytes of all attributes when every form has a fixed size
    skip_plan: tuple[tuple[int, int], ...]  # (step, n): see _skip
    attributes: tuple[tuple[int, int, int], ...]  # (attribute, form, implicit const)
    wanted: bool  # decode attributes (tag of interest)
    sibling: bool


def _read_abbrevs(data: bytes, offset: int, offset_size: int) -> dict[int, _Abbrev]:
    """One abbreviation table (DWARF 5 §7.5.3) with its skip plans."""
    table: dict[int, _Abbrev] = {}
    try:
        while True:
            code, offset = _uleb(data, offset)
            if code == 0:
                return table
            tag, offset = _uleb(data, offset)
            has_children = data[offset] == 1
            offset += 1
            attributes = []
            while True:
                attribute, offset = _uleb(data, offset)
                form, offset = _uleb(data, offset)
                if attribute == 0 and form == 0:
                    break
                implicit = 0
                if form == FORM_IMPLICIT_CONST:
                    implicit, offset = _sleb(data, offset)
                attributes.append((attribute, form, implicit))
            table[code] = _compile_abbrev(tag, has_children, tuple(attributes), offset_size)
    except IndexError:
        raise InputError(f".debug_abbrev is truncated near {offset:#x}") from None


# Skip steps: 0 fixed n bytes, 1 LEB128, 2 NUL-terminated string, 3 uleb-sized block,
# 4/5/6 block with a 1/2/4-byte length, 7 DW_FORM_indirect.
_BLOCK_STEPS = {0x09: 3, 0x18: 3, 0x0A: 4, 0x03: 5, 0x04: 6}
_LEB_FORMS = {0x0D, 0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02}


def _form_step(form: int, offset_size: int) -> tuple[int, int]:
    size = _FORM_SIZE.get(form, -1)
    if size == "O":
        return (0, offset_size)
    if size == "A":
        return (0, 8)
    if isinstance(size, int) and size >= 0:
        return (0, size)
    if form in _LEB_FORMS:
        return (1, 0)
    if form == FORM_STRING:
        return (2, 0)
    if form in _BLOCK_STEPS:
        return (_BLOCK_STEPS[form], 0)
    if form == FORM_INDIRECT:
        return (7, 0)
    raise InputError(f".debug_abbrev: unknown attribute form {form:#x}")


def _compile_abbrev(
    tag: int, has_children: bool, attributes: tuple[tuple[int, int, int], ...], offset_size: int
) -> _Abbrev:
    steps: list[tuple[int, int]] = []
    for _attribute, form, _implicit in attributes:
        step = _form_step(form, offset_size)
        if step[0] == 0 and steps and steps[-1][0] == 0:
            steps[-1] = (0, steps[-1][1] + step[1])
        elif step != (0, 0):
            steps.append(step)
    fixed = None
    if not steps:
        fixed = 0
    elif len(steps) == 1 and steps[0][0] == 0:
        fixed = steps[0][1]
    wanted_attributes = _WANTED.get(tag)
    return _Abbrev(
        tag=tag,
        has_children=has_children,
        fixed_size=fixed,
        skip_plan=tuple(steps),
        attributes=attributes,
        wanted=wanted_attributes is not None,
        sibling=any(a == AT_SIBLING for a, _f, _i in attributes),
    )


# -- LEB128 and skipping -----------------------------------------------------------------------


def _uleb(data: bytes, offset: int) -> tuple[int, int]:
    byte = data[offset]
    offset += 1
    if byte < 0x80:
        return byte, offset
    result = byte & 0x7F
    shift = 7
    while True:
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, offset
        shift += 7


def _sleb(data: bytes, offset: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, offset


def _skip(data: bytes, offset: int, plan: tuple[tuple[int, int], ...], offset_size: int) -> int:
    for step, size in plan:
        if step == 0:
            offset += size
        elif step == 1:
            while data[offset] & 0x80:
                offset += 1
            offset += 1
        elif step == 2:
            offset = data.index(0, offset) + 1
        elif step == 3:
            length, offset = _uleb(data, offset)
            offset += length
        elif step == 4:
            offset += 1 + data[offset]
        elif step == 5:
            offset += 2 + int.from_bytes(data[offset : offset + 2], "little")
        elif step == 6:
            offset += 4 + int.from_bytes(data[offset : offset + 4], "little")
        else:
            form, offset = _uleb(data, offset)
            offset = _skip(data, offset, (_form_step(form, offset_size),), offset_size)
    return offset


# -- per-unit context --------------------------------------------------------------------------


class _Unit:
    """What decoding attributes of one unit needs: its bases, strings and file table."""

    def __init__(
        self, sections: _Sections, header: _UnitHeader, abbrevs: dict[int, _Abbrev]
    ) -> None:
        self.sections = sections
        self.header = header
        self.abbrevs = abbrevs
        self.str_offsets_base = 8 if header.offset_size == 4 else 16  # DWARF 5 §7.26 default
        self.addr_base = 8
        self.rnglists_base = 0
        self.low_pc = 0
        self.name = ""
        self.comp_dir = ""
        self.stmt_list: int | None = None
        self._files: list[str | None] | None = None

    # attribute value decoding (DWARF 5 §7.5.5)
    def read(self, data: bytes, offset: int, form: int, implicit: int) -> tuple[Any, int]:
        size = _FORM_SIZE.get(form, -1)
        if size == "O":
            width = self.header.offset_size
            return int.from_bytes(data[offset : offset + width], "little"), offset + width
        if size == "A":
            return int.from_bytes(data[offset : offset + 8], "little"), offset + 8
        if form in (0x0B, 0x0C, 0x11, 0x25, 0x29):
            return data[offset], offset + 1
        if form in (0x05, 0x12, 0x26, 0x2A):
            return int.from_bytes(data[offset : offset + 2], "little"), offset + 2
        if form in (0x27, 0x2B):
            return int.from_bytes(data[offset : offset + 3], "little"), offset + 3
        if form in (0x06, 0x13, 0x1C, 0x28, 0x2C):
            return int.from_bytes(data[offset : offset + 4], "little"), offset + 4
        if form in (0x07, 0x14, 0x20, 0x24):
            return int.from_bytes(data[offset : offset + 8], "little"), offset + 8
        if form == 0x19:
            return 1, offset
        if form == FORM_IMPLICIT_CONST:
            return implicit, offset
        if form in (0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02):
            return _uleb(data, offset)
        if form == 0x0D:
            return _sleb(data, offset)
        if form == FORM_STRING:
            end = data.index(0, offset)
            return data[offset:end].decode("utf-8", "replace"), end + 1
        if form in {0x18, 0x09}:
            length, offset = _uleb(data, offset)
            return data[offset : offset + length], offset + length
        if form == 0x0A:
            length = data[offset]
            return data[offset + 1 : offset + 1 + length], offset + 1 + length
        if form == FORM_INDIRECT:
            real_form, offset = _uleb(data, offset)
            return self.read(data, offset, real_form, 0)
        return None, _skip(
            data, offset, (_form_step(form, self.header.offset_size),), self.header.offset_size
        )

    def string(self, form: int, value: Any) -> str | None:
        if isinstance(value, str):
            return value
        if form == FORM_STRP:
            return _cstring(self.sections.str, value)
        if form == FORM_LINE_STRP:
            return _cstring(self.sections.line_str, value)
        if form in _STRX_FORMS or form == 0x1F02:
            width = self.header.offset_size
            position = self.str_offsets_base + value * width
            table = self.sections.str_offsets
            if position + width > len(table):
                return None
            return _cstring(
                self.sections.str, int.from_bytes(table[position : position + width], "little")
            )
        return None

    def address(self, form: int, value: int) -> int:
        if form in _ADDRX_FORMS or form == 0x1F01:
            position = self.addr_base + value * 8
            return int.from_bytes(self.sections.addr[position : position + 8], "little")
        return value

    def ranges(self, form: int, value: int) -> list[tuple[int, int]]:
        """A ``DW_AT_ranges`` list: DWARF 5 §2.17.3 (rnglists) or DWARF 4 §2.17.3 (ranges)."""
        if self.header.version >= 5:
            data = self.sections.rnglists
            if form == FORM_RNGLISTX:
                width = self.header.offset_size
                position = self.rnglists_base + value * width
                value = self.rnglists_base + int.from_bytes(
                    data[position : position + width], "little"
                )
            return _rnglist(data, value, self.low_pc, self)
        return _legacy_ranges(self.sections.ranges, value, self.low_pc)

    def file_name(self, index: int) -> str | None:
        if self._files is None:
            self._files = _file_table(self) if self.stmt_list is not None else []
        if 0 <= index < len(self._files):
            return self._files[index]
        return None


def _cstring(data: bytes, offset: int) -> str | None:
    end = data.find(0, offset)
    if offset >= len(data) or end < 0:
        return None
    return data[offset:end].decode("utf-8", "replace")


def _rnglist(data: bytes, offset: int, base: int, unit: _Unit) -> list[tuple[int, int]]:
    spans = []
    while offset < len(data):
        kind = data[offset]
        offset += 1
        if kind == 0:  # DW_RLE_end_of_list
            break
        if kind == 1:  # base_addressx
            index, offset = _uleb(data, offset)
            base = unit.address(FORM_ADDRX, index)
        elif kind == 2:  # startx_endx
            start, offset = _uleb(data, offset)
            end, offset = _uleb(data, offset)
            spans.append((unit.address(FORM_ADDRX, start), unit.address(FORM_ADDRX, end)))
        elif kind == 3:  # startx_length
            start, offset = _uleb(data, offset)
            length, offset = _uleb(data, offset)
            low = unit.address(FORM_ADDRX, start)
            spans.append((low, low + length))
        elif kind == 4:  # offset_pair
            start, offset = _uleb(data, offset)
            end, offset = _uleb(data, offset)
            spans.append((base + start, base + end))
        elif kind == 5:  # base_address
            base = int.from_bytes(data[offset : offset + 8], "little")
            offset += 8
        elif kind == 6:  # start_end
            start = int.from_bytes(data[offset : offset + 8], "little")
            end = int.from_bytes(data[offset + 8 : offset + 16], "little")
            offset += 16
            spans.append((start, end))
        elif kind == 7:  # start_length
            start = int.from_bytes(data[offset : offset + 8], "little")
            length, offset = _uleb(data, offset + 8)
            spans.append((start, start + length))
        else:
            break
    return spans


def _legacy_ranges(data: bytes, offset: int, base: int) -> list[tuple[int, int]]:
    spans = []
    while offset + 16 <= len(data):
        start, end = struct.unpack_from("<QQ", data, offset)
        offset += 16
        if start == 0 and end == 0:
            break
        if start == 0xFFFFFFFFFFFFFFFF:  # base address selection entry
            base = end
            continue
        spans.append((base + start, base + end))
    return spans


def _file_table(unit: _Unit) -> list[str | None]:
    """File names of the unit's line program header (DWARF 5 §6.2.4, DWARF 4 §6.2.4)."""
    data = unit.sections.line
    offset = unit.stmt_list or 0
    try:
        (length,) = struct.unpack_from("<I", data, offset)
        offset_size = 4
        offset += 4
        if length == 0xFFFFFFFF:
            offset_size = 8
            offset += 8
        (version,) = struct.unpack_from("<H", data, offset)
        offset += 2
        if version >= 5:
            offset += 2  # address_size, segment_selector_size
        offset += offset_size  # header_length
        offset += 4 if version >= 4 else 3  # min_inst_length, (max_ops), default_is_stmt, line_base
        offset += 1  # line_range
        opcode_base = data[offset]
        offset += 1 + opcode_base - 1
        comp_dir = unit.comp_dir
        if version >= 5:
            directories, offset = _v5_entries(unit, data, offset, offset_size)
            files, offset = _v5_entries(unit, data, offset, offset_size)
            dir_names = [d.get(1) or "" for d in directories]
            names: list[str | None] = []
            for entry in files:
                name = entry.get(1)
                if not isinstance(name, str):
                    names.append(None)
                    continue
                index = entry.get(2, 0)
                directory = (
                    dir_names[index] if isinstance(index, int) and index < len(dir_names) else ""
                )
                names.append(_join(comp_dir, directory, name))
            return names
        dir_names = [comp_dir]
        while data[offset]:
            end = data.index(0, offset)
            dir_names.append(data[offset:end].decode("utf-8", "replace"))
            offset = end + 1
        offset += 1
        names = [None]  # DWARF 4 file indexes start at 1
        while data[offset]:
            end = data.index(0, offset)
            name = data[offset:end].decode("utf-8", "replace")
            directory_index, offset = _uleb(data, end + 1)
            _mtime, offset = _uleb(data, offset)
            _length, offset = _uleb(data, offset)
            directory = dir_names[directory_index] if directory_index < len(dir_names) else ""
            names.append(_join(comp_dir, directory, name))
        return names
    except (struct.error, IndexError, ValueError):
        log.debug("unit %#x: unreadable line table header", unit.header.offset)
        return []


def _v5_entries(
    unit: _Unit, data: bytes, offset: int, offset_size: int
) -> tuple[list[dict[int, Any]], int]:
    format_count = data[offset]
    offset += 1
    formats = []
    for _ in range(format_count):
        content, offset = _uleb(data, offset)
        form, offset = _uleb(data, offset)
        formats.append((content, form))
    count, offset = _uleb(data, offset)
    entries = []
    for _ in range(count):
        entry: dict[int, Any] = {}
        for content, form in formats:
            if form in (FORM_LINE_STRP, FORM_STRP):
                value_offset = int.from_bytes(data[offset : offset + offset_size], "little")
                offset += offset_size
                blob = unit.sections.line_str if form == FORM_LINE_STRP else unit.sections.str
                entry[content] = _cstring(blob, value_offset)
            elif form == FORM_STRING:
                end = data.index(0, offset)
                entry[content] = data[offset:end].decode("utf-8", "replace")
                offset = end + 1
            elif form in _STRX_FORMS:
                value, offset = unit.read(data, offset, form, 0)
                entry[content] = unit.string(form, value)
            else:
                value, offset = unit.read(data, offset, form, 0)
                entry[content] = value
        entries.append(entry)
    return entries, offset


def _join(comp_dir: str, directory: str, name: str) -> str:
    if not name.startswith("/"):
        name = posixpath.join(directory, name) if directory else name
        if not name.startswith("/") and comp_dir:
            name = posixpath.join(comp_dir, name)
    return posixpath.normpath(name)


# -- the scan ----------------------------------------------------------------------------------

# What a unit scan returns. Names are resolved inside the unit where possible; a reference to
# another unit stays an int (a .debug_info offset) for _assemble to resolve.
_Origin = tuple[str, str | None, str] | int  # (name, decl file, unit name) or DIE offset


@dataclass(slots=True)
class _BatchResult:
    unit_names: dict[int, str]  # unit offset -> absolute name
    functions: list[tuple[_Origin, str | None, int, tuple[tuple[int, int], ...]]]
    inlined: Counter[tuple[_Origin, int]]  # (origin, caller low_pc) -> instances
    variables: list[tuple[_Origin, int]]


# The section bytes, set by take_census just before forking the workers that read them.
_FORKED: dict[str, _Sections] = {}


def _scan_batch_in_worker(batch: list[_UnitHeader]) -> _BatchResult:
    return _scan_units(_FORKED["sections"], batch)


def _scan_units(sections: _Sections, units: Sequence[_UnitHeader]) -> _BatchResult:
    result = _BatchResult({}, [], Counter(), [])
    abbrev_tables: dict[tuple[int, int], dict[int, _Abbrev]] = {}
    for header in units:
        key = (header.abbrev_offset, header.offset_size)
        abbrevs = abbrev_tables.get(key)
        if abbrevs is None:
            abbrevs = abbrev_tables[key] = _read_abbrevs(
                sections.abbrev, header.abbrev_offset, header.offset_size
            )
        unit = _Unit(sections, header, abbrevs)
        try:
            _scan_unit(unit, result)
        except (IndexError, ValueError, KeyError, struct.error) as error:
            raise InputError(
                f".debug_info unit at {header.offset:#x} is malformed ({type(error).__name__})"
            ) from None
    return result


# A subprogram DIE as met in the unit: name, decl file index, links to resolve.
_Named = tuple[str | None, int | None, int | None, int | None]  # name, file, origin, spec


def _scan_unit(unit: _Unit, result: _BatchResult) -> None:
    """Walk one unit's DIE tree. Long because it is the hot loop: everything is inlined."""
    data = unit.sections.info
    header = unit.header
    abbrevs = unit.abbrevs
    offset_size = header.offset_size
    unit_offset = header.offset
    end = header.end
    offset = header.die_offset
    named: dict[int, _Named] = {}  # subprogram and variable DIEs by .debug_info offset
    concrete: list[tuple[int, str | None, int, tuple[tuple[int, int], ...]]] = []
    inline_sites: Counter[tuple[int, int]] = Counter()  # (origin offset, caller low_pc)
    variables: list[tuple[int, int]] = []  # (DIE offset, link address)
    # Stack of enclosing out-of-line functions (low_pc) per open DIE with children; -1: none.
    caller = -1
    stack: list[int] = []
    uleb = _uleb
    while offset < end:
        die_offset = offset
        code = data[offset]
        offset += 1
        if code >= 0x80:
            code, offset = uleb(data, offset - 1)
        if code == 0:
            if stack:
                caller = stack.pop()
            continue
        abbrev = abbrevs[code]
        if not abbrev.wanted:
            if abbrev.fixed_size is not None:
                offset += abbrev.fixed_size
            else:
                offset = _skip(data, offset, abbrev.skip_plan, offset_size)
            if abbrev.has_children:
                if abbrev.sibling and abbrev.tag not in _DESCEND:
                    sibling = _sibling_of(unit, data, die_offset, abbrev)
                    if sibling > offset:
                        offset = sibling
                        continue
                stack.append(caller)
            continue
        # A DIE of interest: decode the attributes we want, skip the others.
        tag = abbrev.tag
        wanted = _WANTED[tag]
        values: dict[int, tuple[int, Any]] = {}
        for attribute, form, implicit in abbrev.attributes:
            if attribute in wanted:
                value, offset = unit.read(data, offset, form, implicit)
                values[attribute] = (form, value)
            else:
                offset = _skip(data, offset, (_form_step(form, offset_size),), offset_size)
        if tag == TAG_INLINED_SUBROUTINE:
            origin = values.get(AT_ABSTRACT_ORIGIN)
            if origin is not None:
                inline_sites[(_ref(origin, unit_offset), caller)] += 1
        elif tag == TAG_SUBPROGRAM:
            name = _string_attribute(unit, values.get(AT_NAME))
            linkage = _string_attribute(
                unit, values.get(AT_LINKAGE_NAME) or values.get(AT_MIPS_LINKAGE_NAME)
            )
            decl = values.get(AT_DECL_FILE)
            origin = values.get(AT_ABSTRACT_ORIGIN)
            spec = values.get(AT_SPECIFICATION)
            named[die_offset] = (
                name,
                decl[1] if decl is not None else None,
                _ref(origin, unit_offset) if origin is not None else None,
                _ref(spec, unit_offset) if spec is not None else None,
            )
            spans = _code_spans(unit, values)
            if spans:
                concrete.append((die_offset, linkage, spans[0][0], tuple(spans)))
                if caller == -1 and abbrev.has_children:
                    stack.append(caller)
                    caller = spans[0][0]
                    continue
        elif tag == TAG_VARIABLE:
            location = values.get(AT_LOCATION)
            if location is not None and isinstance(location[1], bytes) and location[1]:
                expression = location[1]
                link_address = None
                if expression[0] == DW_OP_ADDR and len(expression) == 9:
                    link_address = int.from_bytes(expression[1:9], "little")
                elif expression[0] == DW_OP_ADDRX:
                    index, after = uleb(expression, 1)
                    if after == len(expression):
                        link_address = unit.address(FORM_ADDRX, index)
                if link_address:
                    spec = values.get(AT_SPECIFICATION) or values.get(AT_ABSTRACT_ORIGIN)
                    name = _string_attribute(unit, values.get(AT_NAME))
                    named[die_offset] = (
                        name,
                        None,
                        None,
                        _ref(spec, unit_offset) if spec is not None else None,
                    )
                    variables.append((die_offset, link_address))
        else:  # the unit DIE
            _set_unit_attributes(unit, values)
            result.unit_names[unit_offset] = unit.name
        if abbrev.has_children:
            stack.append(caller)
    # Resolve names inside the unit; references elsewhere stay offsets.
    resolved: dict[int, _Origin] = {}

    def resolve(die: int) -> _Origin:
        if die in resolved:
            return resolved[die]
        resolved[die] = die  # cycle guard
        entry = named.get(die)
        if entry is None:
            return die
        name, file_index, origin, spec = entry
        outcome: _Origin
        if name is not None:
            decl_file = unit.file_name(file_index) if file_index is not None else None
            outcome = (name, decl_file, unit.name)
        else:
            link = origin if origin is not None else spec
            outcome = resolve(link) if link is not None else die
        if (
            name is not None
            and file_index is None
            and spec is not None
            and isinstance(inner := resolve(spec), tuple)
        ):
            outcome = (name, inner[1], inner[2])
        resolved[die] = outcome
        return outcome

    for die, linkage, low_pc, code_spans in concrete:
        result.functions.append((resolve(die), linkage, low_pc, code_spans))
    for (origin_offset, caller_low_pc), count in inline_sites.items():
        result.inlined[(resolve(origin_offset), caller_low_pc)] += count
    for die, link_address in variables:
        result.variables.append((resolve(die), link_address))


def _ref(value: tuple[int, Any], unit_offset: int) -> int:
    form, target = value
    if form in _REF_FORMS:
        return int(unit_offset + target)
    return int(target)  # DW_FORM_ref_addr: offset in .debug_info


def _string_attribute(unit: _Unit, value: tuple[int, Any] | None) -> str | None:
    if value is None:
        return None
    return unit.string(value[0], value[1])


def _code_spans(unit: _Unit, values: dict[int, tuple[int, Any]]) -> list[tuple[int, int]]:
    low = values.get(AT_LOW_PC)
    if low is not None:
        low_pc = unit.address(low[0], low[1])
        high = values.get(AT_HIGH_PC)
        if high is None:
            return [(low_pc, low_pc + 1)]
        high_pc = unit.address(high[0], high[1]) if high[0] in _ADDRESS_FORMS else low_pc + high[1]
        return [(low_pc, high_pc)] if low_pc else []
    ranges = values.get(AT_RANGES)
    if ranges is not None:
        # The entry point (DW_AT_low_pc absent) is the lowest range for C functions; gcc's
        # `.cold` part sits in a second range at a higher address.
        return sorted(span for span in unit.ranges(ranges[0], ranges[1]) if span[0])
    return []


def _set_unit_attributes(unit: _Unit, values: dict[int, tuple[int, Any]]) -> None:
    # Bases first: the name may be a DW_FORM_strx that needs str_offsets_base.
    if AT_STR_OFFSETS_BASE in values:
        unit.str_offsets_base = values[AT_STR_OFFSETS_BASE][1]
    if AT_ADDR_BASE in values:
        unit.addr_base = values[AT_ADDR_BASE][1]
    if AT_RNGLISTS_BASE in values:
        unit.rnglists_base = values[AT_RNGLISTS_BASE][1]
    if AT_LOW_PC in values:
        unit.low_pc = unit.address(*values[AT_LOW_PC])
    if AT_STMT_LIST in values:
        unit.stmt_list = values[AT_STMT_LIST][1]
    comp_dir = _string_attribute(unit, values.get(AT_COMP_DIR)) or ""
    name = _string_attribute(unit, values.get(AT_NAME)) or ""
    unit.comp_dir = comp_dir
    unit.name = _join(comp_dir, "", name) if name and not name.startswith("<") else name


def _sibling_of(unit: _Unit, data: bytes, die_offset: int, abbrev: _Abbrev) -> int:
    """The DW_AT_sibling target of a DIE (0 when unusable)."""
    offset = die_offset
    _code, offset = _uleb(data, offset)
    for attribute, form, implicit in abbrev.attributes:
        if attribute == AT_SIBLING:
            value, _ = unit.read(data, offset, form, implicit)
            return _ref((form, value), unit.header.offset) if isinstance(value, int) else 0
        offset = _skip(
            data, offset, (_form_step(form, unit.header.offset_size),), unit.header.offset_size
        )
    return 0


# -- assembling --------------------------------------------------------------------------------


class _CrossUnitResolver:
    """Resolves a DIE offset in any unit by reading that DIE alone (gcc LTO, clang LTO)."""

    def __init__(
        self, sections: _Sections, units: list[_UnitHeader], unit_names: dict[int, str]
    ) -> None:
        self.sections = sections
        self.units = units
        self.starts = [u.offset for u in units]
        self.unit_names = unit_names
        self.cache: dict[int, tuple[str, str | None, str] | None] = {}
        self.contexts: dict[int, _Unit] = {}
        self.abbrev_tables: dict[tuple[int, int], dict[int, _Abbrev]] = {}

    def _unit_for(self, die_offset: int) -> _Unit | None:
        position = bisect.bisect_right(self.starts, die_offset) - 1
        if position < 0 or die_offset >= self.units[position].end:
            return None
        header = self.units[position]
        unit = self.contexts.get(header.offset)
        if unit is None:
            key = (header.abbrev_offset, header.offset_size)
            if key not in self.abbrev_tables:
                self.abbrev_tables[key] = _read_abbrevs(
                    self.sections.abbrev, header.abbrev_offset, header.offset_size
                )
            unit = _Unit(self.sections, header, self.abbrev_tables[key])
            top = self._attributes(unit, header.die_offset)
            if top is not None:
                _set_unit_attributes(unit, top[1])
            self.contexts[header.offset] = unit
        return unit

    def _attributes(
        self, unit: _Unit, die_offset: int
    ) -> tuple[int, dict[int, tuple[int, Any]]] | None:
        data = self.sections.info
        code, offset = _uleb(data, die_offset)
        abbrev = unit.abbrevs.get(code)
        if abbrev is None:
            return None
        values = {}
        for attribute, form, implicit in abbrev.attributes:
            value, offset = unit.read(data, offset, form, implicit)
            values[attribute] = (form, value)
        return abbrev.tag, values

    def resolve(self, die_offset: int, depth: int = 0) -> tuple[str, str | None, str] | None:
        if die_offset in self.cache:
            return self.cache[die_offset]
        self.cache[die_offset] = None  # cycle guard
        outcome: tuple[str, str | None, str] | None = None
        try:
            unit = self._unit_for(die_offset)
            found = self._attributes(unit, die_offset) if unit is not None else None
        except (IndexError, ValueError, struct.error):
            found = None
        if unit is not None and found is not None and depth < 8:
            values = found[1]
            name = _string_attribute(unit, values.get(AT_NAME))
            decl = values.get(AT_DECL_FILE)
            link = values.get(AT_ABSTRACT_ORIGIN) or values.get(AT_SPECIFICATION)
            inner = self.resolve(_ref(link, unit.header.offset), depth + 1) if link else None
            if name is not None:
                decl_file = unit.file_name(decl[1]) if decl is not None else None
                if decl_file is None and inner is not None:
                    decl_file = inner[1]
                outcome = (name, decl_file, unit.name)
            else:
                outcome = inner
        self.cache[die_offset] = outcome
        return outcome


def _assemble(
    sections: _Sections, units: list[_UnitHeader], results: Iterable[_BatchResult]
) -> DwarfCensus:
    results = list(results)
    unit_names: dict[int, str] = {}
    for batch in results:
        unit_names.update(batch.unit_names)
    root = _source_root(unit_names.values())
    resolver = _CrossUnitResolver(sections, units, unit_names)
    relative_cache: dict[str | None, str | None] = {None: None}

    def relative(path: str | None) -> str | None:
        if path not in relative_cache:
            assert path is not None
            relative_cache[path] = _relative(path, root)
        return relative_cache[path]

    def final(origin: _Origin) -> tuple[str, str | None, str] | None:
        if isinstance(origin, int):
            return resolver.resolve(origin)
        return origin

    functions = []
    for batch in results:
        for origin, linkage, low_pc, spans in batch.functions:
            resolved = final(origin)
            if resolved is None:
                continue
            name, decl_file, unit_name = resolved
            functions.append(
                DwarfFunction(
                    name, linkage, relative(decl_file), relative(unit_name) or "", low_pc, spans
                )
            )
    counts: Counter[tuple[str, str | None]] = Counter()
    callers: dict[tuple[str, str | None], Counter[int]] = {}
    for batch in results:
        for (origin, caller_low_pc), count in batch.inlined.items():
            resolved = final(origin)
            if resolved is None:
                continue
            key = (resolved[0], relative(resolved[1]))
            counts[key] += count
            callers.setdefault(key, Counter())[caller_low_pc] += count
    inlined = {
        key: InlinedFunction(
            key[0], key[1], count, tuple(sorted(callers[key].items(), key=lambda c: (-c[1], c[0])))
        )
        for key, count in counts.items()
    }
    variables = []
    for batch in results:
        for origin, link_address in batch.variables:
            resolved = final(origin)
            if resolved is not None:
                variables.append(
                    DwarfVariable(resolved[0], relative(resolved[2]) or "", link_address)
                )
    log.info(
        "DWARF census: %d units, %d functions, %d inlined functions, %d variables",
        len(units),
        len(functions),
        len(inlined),
        len(variables),
    )
    return DwarfCensus(functions, inlined, variables, root, len(units))


# Top-level directories of the kernel tree: a path component after which the rest of a path is
# source-relative (Makefile "core-y"/"drivers-y" directories plus include/ and scripts/).
KERNEL_TOP_DIRECTORIES = frozenset(
    {
        "arch",
        "block",
        "certs",
        "crypto",
        "drivers",
        "fs",
        "include",
        "init",
        "io_uring",
        "ipc",
        "kernel",
        "lib",
        "mm",
        "net",
        "rust",
        "samples",
        "scripts",
        "security",
        "sound",
        "tools",
        "usr",
        "virt",
    }
)


def _source_root(unit_names: Iterable[str]) -> str:
    """The deepest directory holding nine in ten of the absolute unit names: the source tree.

    Generated files (in the build directory) and a few assembler units may lie elsewhere, so
    the root is not the common prefix of all names.
    """
    names = [name for name in unit_names if name.startswith("/")]
    votes: Counter[str] = Counter()
    for name in names:
        parts = name.split("/")[:-1]
        for depth in range(2, len(parts) + 1):
            votes["/".join(parts[:depth])] += 1
    needed = 0.9 * len(names)
    candidates = [prefix for prefix, count in votes.items() if count >= needed]
    return max(candidates, key=len) if candidates else ""


def _relative(path: str, root: str) -> str:
    if root and path.startswith(root + "/"):
        return path[len(root) + 1 :]
    # Generated files live in the build directory; headers may come from elsewhere.
    parts = path.split("/")
    for position, part in enumerate(parts[:-1]):
        if part in KERNEL_TOP_DIRECTORIES and position:
            return "/".join(parts[position:])
    return path
