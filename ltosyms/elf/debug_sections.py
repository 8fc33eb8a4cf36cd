"""Apply a module's relocations to its DWARF sections.

A ``.ko`` is an ET_REL object: its ``.debug_*`` sections hold zeros (or addends) wherever an
address, a string offset or a cross-section offset belongs, and ``.rela.debug_*`` says what to
put there. We apply them as the linker would, with S + A, where S is the symbol value plus the
link address :mod:`ltosyms.elf.image` gave the symbol's section. That is what keeps the DWARF of
the many ``.text.<name>`` sections of a clang LTO module from colliding at address 0 (DOMAIN §5).

A vmlinux is never relocated here: its relocations (``--emit-relocs``, 250 MB of
``.rela.debug_*`` on Debian) are already applied in the section contents (DOMAIN §7).
"""

from __future__ import annotations

import struct

from ltosyms.elf.image import KernelImage, Section
from ltosyms.errors import InputError

SHT_RELA = 4
SHT_REL = 9
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00

# Relocation types that can appear in DWARF sections: (byte count, pc-relative).
# x86-64 psABI table 4.9; AArch64 ELF ABI (aaelf64) "Static Data relocations".
_RELOCATION_TYPES: dict[str, dict[int, tuple[int, bool]]] = {
    "x86_64": {
        1: (8, False),  # R_X86_64_64
        2: (4, True),  # R_X86_64_PC32
        10: (4, False),  # R_X86_64_32
        11: (4, False),  # R_X86_64_32S
        24: (8, True),  # R_X86_64_PC64
    },
    "aarch64": {
        257: (8, False),  # R_AARCH64_ABS64
        258: (4, False),  # R_AARCH64_ABS32
        259: (2, False),  # R_AARCH64_ABS16
        260: (8, True),  # R_AARCH64_PREL64
        261: (4, True),  # R_AARCH64_PREL32
        262: (2, True),  # R_AARCH64_PREL16
    },
}
_NONE_TYPES = {"x86_64": 0, "aarch64": 0}


def symbol_values(image: KernelImage) -> list[int]:
    """S for every ``.symtab`` entry: st_value plus its section's link address."""
    symtab = image.get_section(".symtab")
    if symtab is None:
        return []
    raw = image.section_bytes(symtab)
    endian = "<" if image.little_endian else ">"
    addresses = [s.link_address for s in image.sections]
    count = len(addresses)
    values = []
    for _name, _info, _other, shndx, st_value, _size in struct.iter_unpack(endian + "IBBHQQ", raw):
        if SHN_UNDEF < shndx < min(count, SHN_LORESERVE):
            values.append(st_value + addresses[shndx])
        else:
            values.append(st_value)
    return values


def relocated_bytes(
    image: KernelImage, target: Section, contents: bytes, symbols: list[int]
) -> bytes:
    """``contents`` of ``target`` with every REL/RELA relocation aimed at it applied."""
    types = _RELOCATION_TYPES.get(image.machine)
    if types is None:
        return contents
    none_type = _NONE_TYPES[image.machine]
    endian = "<" if image.little_endian else ">"
    patched = bytearray(contents)
    size = len(patched)
    packers = {
        8: struct.Struct(endian + "Q"),
        4: struct.Struct(endian + "I"),
        2: struct.Struct(endian + "H"),
    }
    for section in image.sections:
        if section.info != target.index or section.elf_type not in (SHT_RELA, SHT_REL):
            continue
        with_addend = section.elf_type == SHT_RELA
        raw = image.section_bytes(section)
        layout = endian + ("QQq" if with_addend else "QQ")
        entry_size = 24 if with_addend else 16
        if len(raw) % entry_size:
            raise InputError(f"{image.path}: {section.name} size is not a multiple of {entry_size}")
        for entry in struct.iter_unpack(layout, raw):
            offset, info = entry[0], entry[1]
            kind = info & 0xFFFFFFFF
            if kind == none_type:
                continue
            width_pc = types.get(kind)
            if width_pc is None:
                raise InputError(
                    f"{image.path}: relocation type {kind} in {section.name} is not supported"
                )
            width, pc_relative = width_pc
            if offset + width > size:
                raise InputError(f"{image.path}: relocation at {offset:#x} outside {target.name}")
            packer = packers[width]
            symbol = info >> 32
            if symbol >= len(symbols):
                raise InputError(f"{image.path}: relocation symbol {symbol} outside .symtab")
            addend = entry[2] if with_addend else packer.unpack_from(patched, offset)[0]
            value = symbols[symbol] + addend
            if pc_relative:
                value -= target.link_address + offset
            packer.pack_into(patched, offset, value & ((1 << (8 * width)) - 1))
    return bytes(patched)
