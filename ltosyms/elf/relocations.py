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
import struct
import weakref
from dataclasses import dataclass

from ltosyms.elf.image import SHT_REL, SHT_RELA, KernelImage
from ltosyms.errors import InputError

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


@dataclass(frozen=True, slots=True)
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


class ModuleRelocations:
    """The relocations of every allocated section of a module, by field address."""

    def __init__(self, image: KernelImage) -> None:
        self.machine = image.machine
        self._addresses: list[int] = []
        self._relocations: list[Relocation] = []
        if not image.is_module:
            return
        symtab = image.get_section(".symtab")
        if symtab is None:
            return
        symbols = image.section_bytes(symtab)
        strtab = image.sections[symtab.link] if 0 < symtab.link < len(image.sections) else None
        strings = image.section_bytes(strtab) if strtab is not None else b""
        endian = "<" if image.little_endian else ">"
        symbol_layout = struct.Struct(endian + "IBBHQQ")
        names = _TYPE_NAMES.get(image.machine, {})
        relative = _PC_RELATIVE.get(image.machine, frozenset())
        sizes = _FIELD_SIZES.get(image.machine, {})
        described: dict[int, tuple[str, int | None, bool]] = {}
        found: list[Relocation] = []
        for section in image.sections:
            if section.elf_type not in (SHT_RELA, SHT_REL) or not 0 < section.info < len(
                image.sections
            ):
                continue
            target = image.sections[section.info]
            if not target.is_alloc:
                continue  # .rela.debug_*: the DWARF reader applies those (elf.debug_sections)
            with_addend = section.elf_type == SHT_RELA
            entry_size = 24 if with_addend else 16
            raw = image.section_bytes(section)
            if len(raw) % entry_size:
                raise InputError(
                    f"{image.path}: {section.name} size is not a multiple of {entry_size}"
                )
            layout = endian + ("QQq" if with_addend else "QQ")
            for entry in struct.iter_unpack(layout, raw):
                offset, info = entry[0], entry[1]
                kind, index = info & 0xFFFFFFFF, info >> 32
                if kind == 0:  # R_*_NONE
                    continue
                if index not in described:
                    described[index] = _describe(image, symbol_layout, symbols, strings, index)
                name, value, is_section = described[index]
                addend = entry[2] if with_addend else 0
                found.append(
                    Relocation(
                        link_address=target.link_address + offset,
                        type=kind,
                        type_name=names.get(kind, f"type {kind}"),
                        symbol=name,
                        symbol_link_address=value,
                        is_section_symbol=is_section,
                        addend=addend,
                        pc_relative=kind in relative,
                        field_size=sizes.get(kind, 4),
                    )
                )
        found.sort(key=lambda r: r.link_address)
        self._relocations = found
        self._addresses = [r.link_address for r in found]

    def __len__(self) -> int:
        return len(self._relocations)

    def at(self, link_address: int) -> Relocation | None:
        """The relocation whose field starts at ``link_address``."""
        position = bisect.bisect_left(self._addresses, link_address)
        if position < len(self._addresses) and self._addresses[position] == link_address:
            return self._relocations[position]
        return None

    def within(self, start: int, end: int) -> list[Relocation]:
        """Relocations whose fields lie in [start, end): those of one instruction."""
        low = bisect.bisect_left(self._addresses, start)
        high = bisect.bisect_left(self._addresses, end)
        return [r for r in self._relocations[low:high] if r.end_address <= end]


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
