"""The debug sections of a kernel image, handed to the DWARF layer (:mod:`ltosyms.dwarf`).

The DWARF layer reads section buffers and a :class:`~ltosyms.dwarf.DwarfConfig`; this is the one
adapter that makes them from a :class:`KernelImage`:

- a vmlinux: every section is a window into the memory-mapped file, nothing is copied until a
  decoder slices one unit out. Its relocations (``--emit-relocs``, 250 MB of ``.rela.debug_*``
  on Debian) are already applied in the section contents, so they are never read (DOMAIN §7).
- a module (``.ko``, ET_REL): the sections are small; they are copied, decompressed if
  needed and relocated. The ``.debug_*`` sections hold zeros (or addends) wherever an
  address, a string offset or a cross-section offset belongs, and ``.rela.debug_*`` says what
  to put there. We apply them as the linker would, with S + A, where S is the symbol value
  plus the link address :mod:`ltosyms.elf.image` gave the symbol's section. That is what keeps
  the DWARF of the many ``.text.<name>`` sections of a clang LTO module from colliding at
  address 0 (DOMAIN §5).
"""

from __future__ import annotations

import mmap
import os
import struct
import weakref
import zlib
from typing import TYPE_CHECKING

from ltosyms.dwarf import (
    DEBUG_SECTIONS,
    CuKey,
    DwarfConfig,
    DwarfResolver,
    DwarfSections,
    SectionBuffer,
    SourceLocation,
)
from ltosyms.elf.image import KernelImage, Section
from ltosyms.elf.outer_names import OuterNames, outer_namer
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import DwarfError, InputError
from ltosyms.limits import MAX_COMPRESSION_RATIO, MAX_IMAGE_BYTES, MIN_INFLATE_BYTES
from ltosyms.stores import Memo

if TYPE_CHECKING:
    from ltosyms.dwarf import CuData, CuMap

__all__ = ["ImageDebugSections", "dwarf_resolver", "dwarf_sections"]

SHF_COMPRESSED = 0x800
ELFCOMPRESS_ZLIB = 1
ELFCOMPRESS_ZSTD = 2


def dwarf_resolver(
    image: KernelImage,
    symbols: SymbolTable | None = None,
    *,
    units: Memo[CuKey, CuData] | None = None,
    unit_map: Memo[None, CuMap] | None = None,
    chains: Memo[int, tuple[SourceLocation, ...]] | None = None,
    outer_names: Memo[None, OuterNames] | None = None,
) -> DwarfResolver:
    """The DWARF resolver of ``image``; its sections are opened only when a unit must be
    parsed. ``symbols``, when given, names the outermost entry of each chain from the ELF
    symbol table as llvm-symbolizer does (:mod:`ltosyms.elf.outer_names`), and only then are
    chains kept in ``chains``. The memos keep what the resolver works out (see
    :class:`~ltosyms.dwarf.DwarfResolver`)."""
    outer_name = outer_namer(symbols, outer_names) if symbols is not None else None
    return DwarfResolver(
        ImageDebugSections(image),
        units=units,
        unit_map=unit_map,
        chains=chains,
        outer_name=outer_name,
    )


class ImageDebugSections:
    """The :class:`~ltosyms.dwarf.SectionSource` of an image: asks the section headers whether
    there is DWARF, reads the sections on :meth:`open` (once)."""

    def __init__(self, image: KernelImage) -> None:
        self.image = image
        self.name = str(image.path)
        self._opened: DwarfSections | None = None

    def has_dwarf(self) -> bool:
        return self.image.has_section(".debug_info") and self.image.has_section(".debug_abbrev")

    def open(self) -> DwarfSections:
        if self._opened is None:
            self._opened = dwarf_sections(self.image)
        return self._opened


def dwarf_sections(image: KernelImage) -> DwarfSections:
    """The debug sections of ``image``: windows into the mapped file for a vmlinux,
    decompressed and relocated copies for a module."""
    # Not all allocated sections bound the code: x86-64 links .data..percpu at 0.
    code = [s for s in image.sections if s.is_alloc and s.is_exec and s.size]
    symbols: list[int] | None = None
    sections: dict[str, SectionBuffer] = {}
    file: _File | None = None
    for name in DEBUG_SECTIONS:
        section = image.get_section(name)
        if section is None or not section.has_bits or not section.size:
            continue
        compressed = bool(section.flags & SHF_COMPRESSED)
        if not image.is_module and not compressed:
            if file is None and isinstance(image.data, mmap.mmap):
                try:
                    file = _File(str(image.path))
                except OSError:
                    file = None
            sections[name] = SectionBuffer(
                name,
                image.data,
                section.file_offset,
                section.size,
                file.pread if file is not None else None,
            )
            continue
        contents = image.section_bytes(section)
        if compressed:
            contents = _decompress(image, section, contents)
        if image.is_module:
            if symbols is None:
                symbols = symbol_values(image)
            contents = relocated_bytes(image, section, contents, symbols)
        sections[name] = SectionBuffer(name, contents, 0, len(contents))
    return DwarfSections(
        sections,
        DwarfConfig(
            name=str(image.path),
            little_endian=image.little_endian,
            lowest_address=min((s.link_address for s in code), default=0),
            highest_address=max((s.end_address for s in code), default=1 << 64),
        ),
    )


class _File:
    """A read-only descriptor of an image file, closed when the sections go away."""

    def __init__(self, path: str) -> None:
        self.descriptor = os.open(path, os.O_RDONLY)
        self._closer = weakref.finalize(self, os.close, self.descriptor)

    def pread(self, position: int, length: int) -> bytes:
        return os.pread(self.descriptor, length, position)


def _decompress(image: KernelImage, section: Section, contents: bytes) -> bytes:
    """A SHF_COMPRESSED section's bytes, inflated within the bounds of :mod:`ltosyms.limits`:
    the size its header claims is checked before anything is inflated, and inflating stops
    at that size, so neither a false claim nor an endless stream can take the memory."""
    # Elf64_Chdr (gABI "Section Compression"): ch_type u32, reserved u32, ch_size u64, align u64.
    endian = "<" if image.little_endian else ">"
    where = f"{image.path}: {section.name}"
    try:
        kind, _reserved, size, _align = struct.unpack_from(endian + "IIQQ", contents)
    except struct.error:
        raise DwarfError(f"{where}: truncated compression header") from None
    payload = memoryview(contents)[24:]
    if size > MAX_IMAGE_BYTES or (
        size > MIN_INFLATE_BYTES and size > len(payload) * MAX_COMPRESSION_RATIO
    ):
        raise DwarfError(
            f"{where}: claims {size:,} bytes inflated from {len(payload):,}: not a real "
            "debug section (a compression bomb?)"
        )
    if kind == ELFCOMPRESS_ZLIB:
        inflater = zlib.decompressobj()
        try:
            # One byte more than claimed tells a stream that goes on from one that ends.
            data = inflater.decompress(payload, size + 1)
        except zlib.error as error:
            raise DwarfError(f"{where}: {error}") from None
        if len(data) > size or inflater.unconsumed_tail:
            raise DwarfError(f"{where}: inflates to more than the {size:,} bytes it claims")
    elif kind == ELFCOMPRESS_ZSTD:
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            raise DwarfError(f"{where} is zstd-compressed; install 'zstandard'") from None
        try:
            data = bytes(zstandard.ZstdDecompressor().decompress(payload, max_output_size=size))
        except zstandard.ZstdError as error:
            raise DwarfError(f"{where}: {error}") from None
    else:
        raise DwarfError(f"{where}: unknown compression type {kind}")
    if len(data) != size:
        raise DwarfError(f"{where}: inflates to {len(data):,} bytes, its header says {size:,}")
    return data


# -- module relocation ------------------------------------------------------------------------

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
    if len(raw) % 24:  # sizeof(Elf64_Sym)
        raise InputError(f"{image.path}: .symtab size is not a multiple of 24")
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
