"""The relocations of a kernel module's loaded sections: what the loader writes where.

A ``.ko`` is ET_REL: a call from one function to another (or into the kernel) is
``e8 00 00 00 00`` (x86) or ``bl .`` (arm64) in the file, with a relocation saying which symbol
the loader aims it at (kernel/module/main.c ``apply_relocations`` -> arch
``apply_relocate_add``). Disassembling the file alone therefore names the next instruction or
the call itself as the target; the relocation names the callee (docs/kernel-facts.md
#kaslr-and-modules).

Only relocations of allocated sections are read (code, ``__bug_table``, data), once per
module; a vmlinux needs none: its fields are final in the file (an x86 vmlinux keeps
``--emit-relocs`` sections, but their effect is already applied).
"""

from __future__ import annotations

import bisect
import logging
import struct
import weakref
from dataclasses import dataclass

from ltosyms.elf.image import SHT_REL, SHT_RELA, KernelImage
from ltosyms.errors import InputError

log = logging.getLogger(__name__)

# Elf64_Sym: st_name, st_info, st_other, st_shndx, st_value, st_size (gABI "Symbol Table").
_SYMBOL_SIZE = 24
_SHN_UNDEF, _SHN_LORESERVE = 0, 0xFF00
_STT_SECTION = 3

# Relocation type numbers and names: x86-64 psABI table 4.9, AArch64 ELF ABI (aaelf64)
# section 5.7. Only the ones kernel modules use; others are read and named by number.
_TYPE_NAMES: dict[str, dict[int, str]] = {
    "x86_64": {
        1: "R_X86_64_64",
        2: "R_X86_64_PC32",
        4: "R_X86_64_PLT32",
        9: "R_X86_64_GOTPCREL",
        10: "R_X86_64_32",
        11: "R_X86_64_32S",
        24: "R_X86_64_PC64",
        41: "R_X86_64_GOTPCRELX",
        42: "R_X86_64_REX_GOTPCRELX",
    },
    "aarch64": {
        257: "R_AARCH64_ABS64",
        258: "R_AARCH64_ABS32",
        260: "R_AARCH64_PREL64",
        261: "R_AARCH64_PREL32",
        273: "R_AARCH64_LD_PREL_LO19",
        274: "R_AARCH64_ADR_PREL_LO21",
        275: "R_AARCH64_ADR_PREL_PG_HI21",
        277: "R_AARCH64_ADD_ABS_LO12_NC",
        278: "R_AARCH64_LDST8_ABS_LO12_NC",
        279: "R_AARCH64_TSTBR14",
        280: "R_AARCH64_CONDBR19",
        282: "R_AARCH64_JUMP26",
        283: "R_AARCH64_CALL26",
        284: "R_AARCH64_LDST16_ABS_LO12_NC",
        285: "R_AARCH64_LDST32_ABS_LO12_NC",
        286: "R_AARCH64_LDST64_ABS_LO12_NC",
        299: "R_AARCH64_LDST128_ABS_LO12_NC",
    },
}
# Types whose field holds S + A - P, the distance from the field: x86 branch displacements and
# RIP-relative operands; arm64 branches (imm26 = (S + A - P) >> 2) and relative data.
_PC_RELATIVE: dict[str, frozenset[int]] = {
    "x86_64": frozenset({2, 4, 24}),
    "aarch64": frozenset({260, 261, 273, 274, 279, 280, 282, 283}),
}
# arm64 branches: the relocation sits on the instruction itself and S + A is the target.
ARM64_BRANCHES = frozenset({279, 280, 282, 283})
# Bytes of the field each type writes: x86 64-bit types 8, the others 4; arm64 data types by
# their name, instruction types the 4-byte instruction.
_FIELD_SIZES: dict[str, dict[int, int]] = {
    "x86_64": {1: 8, 24: 8},
    "aarch64": {257: 8, 260: 8, 259: 2, 262: 2},
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Relocation:
    """One relocation of a loaded section: the loader writes ``symbol + addend`` (or its
    distance from the field, for PC-relative types) into the field at ``link_address``."""

    link_address: int  # of the field, in the module's section layout (ltosyms.elf.image)
    type: int
    type_name: str  # R_X86_64_PLT32, R_AARCH64_CALL26, ... (or "type N")
    symbol: str  # the symbol's name; a section symbol's is its section's name
    # None: undefined in the module (a kernel or other module's symbol, found by name at load)
    symbol_link_address: int | None
    is_section_symbol: bool
    addend: int
    pc_relative: bool
    field_size: int  # bytes written at link_address

    @property
    def end_address(self) -> int:
        return self.link_address + self.field_size

    @property
    def target_link_address(self) -> int | None:
        """``symbol + addend`` in the module's layout (None for an undefined symbol)."""
        if self.symbol_link_address is None:
            return None
        return self.symbol_link_address + self.addend


# A relocation as its table holds it: (field link address, type, symbol index, addend).
_Entry = tuple[int, int, int, int]


class ModuleRelocations:
    """The relocations of a module's allocated sections, by field address.

    A section's relocation table is read the first time an address in it is asked about:
    a decode names a few calls of a module, which has tables for its data, jump tables,
    ``__mcount_loc`` and more."""

    def __init__(self, image: KernelImage) -> None:
        self.image = image
        self.machine = image.machine
        endian = "<" if image.little_endian else ">"
        self._symbol_layout = struct.Struct(endian + "IBBHQQ")
        self._endian = endian
        # Relocation sections by the index of the section they apply to.
        self._tables: dict[int, list[int]] = {}
        count = len(image.sections)
        for section in image.sections if image.is_module else ():
            applies_to = section.info
            if (
                section.elf_type in (SHT_RELA, SHT_REL)
                and 0 < applies_to < count
                and image.sections[applies_to].is_alloc  # .rela.debug_*: elf.debug_sections
            ):
                self._tables.setdefault(applies_to, []).append(section.index)
        self._read: dict[int, tuple[list[int], list[_Entry]]] = {}
        self._described: dict[int, tuple[str, int | None, bool]] = {}
        self._symbols: bytes | None = None
        self._strings = b""

    def at(self, link_address: int) -> Relocation | None:
        """The relocation whose field starts at ``link_address``."""
        found = self.within(link_address, link_address + 8)
        return found[0] if found and found[0].link_address == link_address else None

    def within(self, start: int, end: int) -> list[Relocation]:
        """Relocations whose fields lie in [start, end): those of one instruction."""
        section = self.image.section_at(start)
        if section is None or section.index not in self._tables:
            return []
        addresses, entries = self._section(section.index)
        low = bisect.bisect_left(addresses, start)
        high = bisect.bisect_left(addresses, end)
        found = (self._relocation(entry) for entry in entries[low:high])
        return [r for r in found if r.end_address <= end]

    def in_section(self, section_index: int) -> list[Relocation]:
        """Every relocation applied to one section, by field address."""
        if section_index not in self._tables:
            return []
        return [self._relocation(entry) for entry in self._section(section_index)[1]]

    def _relocation(self, entry: _Entry) -> Relocation:
        # Made only for the entries asked about: a decode names a few calls of a module
        # whose .text has thousands of relocations.
        link_address, kind, symbol, addend = entry
        name, value, is_section = self._describe(symbol)
        machine = self.image.machine
        return Relocation(
            link_address=link_address,
            type=kind,
            type_name=_TYPE_NAMES.get(machine, {}).get(kind, f"type {kind}"),
            symbol=name,
            symbol_link_address=value,
            is_section_symbol=is_section,
            addend=addend,
            pc_relative=kind in _PC_RELATIVE.get(machine, frozenset()),
            field_size=_FIELD_SIZES.get(machine, {}).get(kind, 4),
        )

    def _section(self, index: int) -> tuple[list[int], list[_Entry]]:
        read = self._read.get(index)
        if read is None:
            try:
                read = self._read_section(index)
            except InputError as error:
                # A damaged table names nothing; the code is still decoded.
                log.warning("%s", error)
                read = ([], [])
            self._read[index] = read
        return read

    def _read_section(self, index: int) -> tuple[list[int], list[_Entry]]:
        image = self.image
        target = image.sections[index]
        found: list[_Entry] = []
        for table in self._tables[index]:
            section = image.sections[table]
            with_addend = section.elf_type == SHT_RELA
            entry_size = 24 if with_addend else 16
            raw = image.section_bytes(section)
            if len(raw) % entry_size:
                raise InputError(
                    f"{image.path}: {section.name} size is not a multiple of {entry_size}"
                )
            layout = self._endian + ("QQq" if with_addend else "QQ")
            for entry in struct.iter_unpack(layout, raw):
                offset, info = entry[0], entry[1]
                kind = info & 0xFFFFFFFF
                if kind == 0:  # R_*_NONE
                    continue
                addend = entry[2] if with_addend else 0
                found.append((target.link_address + offset, kind, info >> 32, addend))
        found.sort()
        return [entry[0] for entry in found], found

    def _describe(self, index: int) -> tuple[str, int | None, bool]:
        described = self._described.get(index)
        if described is None:
            if self._symbols is None:
                image = self.image
                symtab = image.get_section(".symtab")
                self._symbols = image.section_bytes(symtab) if symtab is not None else b""
                if symtab is not None and 0 < symtab.link < len(image.sections):
                    self._strings = image.section_bytes(image.sections[symtab.link])
            described = self._described[index] = _describe(
                self.image, self._symbol_layout, self._symbols, self._strings, index
            )
        return described


def _describe(
    image: KernelImage, layout: struct.Struct, symbols: bytes, strings: bytes, index: int
) -> tuple[str, int | None, bool]:
    """(name, link address or None when undefined, is a section symbol) of symbol ``index``."""
    position = index * _SYMBOL_SIZE
    if position + _SYMBOL_SIZE > len(symbols):
        raise InputError(f"{image.path}: relocation symbol {index} outside .symtab")
    name_offset, info, _other, shndx, value, _size = layout.unpack_from(symbols, position)
    defined = _SHN_UNDEF < shndx < min(len(image.sections), _SHN_LORESERVE)
    if info & 0xF == _STT_SECTION and defined:
        section = image.sections[shndx]
        return section.name, section.link_address + value, True
    end = strings.find(b"\0", name_offset)
    name = strings[name_offset : end if end >= 0 else len(strings)].decode("utf-8", "replace")
    if not defined:
        return name, None, False
    return name, image.sections[shndx].link_address + value, False


_cache: weakref.WeakKeyDictionary[KernelImage, ModuleRelocations] = weakref.WeakKeyDictionary()


def module_relocations(image: KernelImage) -> ModuleRelocations:
    """The image's relocations, read once per open image (none for a vmlinux)."""
    relocations = _cache.get(image)
    if relocations is None:
        relocations = _cache[image] = ModuleRelocations(image)
    return relocations
