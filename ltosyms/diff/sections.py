"""Sections as ``size -A`` lists them, sorted into classes (text, rodata, data, bss, init).

``size -A`` (binutils size.c, SysV format) prints every section BFD knows except the ones it
turns into symbol tables and relocations; for an ELF vmlinux those are ``.symtab``,
``.strtab``, ``.shstrtab`` and the ``.rela.*`` sections ``--emit-relocs`` leaves behind.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ltosyms.diff.model import ListedSection, SectionClass, SectionSize
from ltosyms.elf.image import SHT_REL, SHT_RELA, KernelImage, Section

if TYPE_CHECKING:
    from ltosyms.elf.symtab import SymbolTable

# Sections size -A leaves out: BFD reads them as the symbol table and relocations.
_NOT_LISTED = frozenset({"", ".symtab", ".strtab", ".shstrtab", ".symtab_shndx"})
_RELOCATION_TYPES = (SHT_RELA, SHT_REL)

# Section names whose class is not what the ELF flags say.
_CLASS_BY_NAME_PREFIX: tuple[tuple[str, SectionClass], ...] = (
    # .rodata holds __ro_after_init data and is writable in the ELF until mark_rodata_ro()
    # (include/asm-generic/vmlinux.lds.h RO_DATA, RO_AFTER_INIT_DATA).
    (".rodata", SectionClass.RODATA),
    # Freed by free_initmem(); only where __init_begin/__init_end are missing (see below).
    (".init.", SectionClass.INIT),
    (".exit.", SectionClass.INIT),
)


def classify_section(section: Section, init_range: tuple[int, int] | None) -> SectionClass:
    """The class of one section; ``init_range`` is [__init_begin, __init_end) if known."""
    if not section.is_alloc:
        return SectionClass.DEBUG if section.name.startswith(".debug") else SectionClass.OTHER
    if init_range is not None:
        # arch/x86/kernel/vmlinux.lds.S: everything between __init_begin and __init_end is
        # freed after boot (.init.text, .init.data, .altinstructions, .exit.text, ...).
        # Per-CPU data is linked at 0 and never falls in the range.
        if init_range[0] <= section.link_address < init_range[1] and section.size:
            return SectionClass.INIT
        if section.name.startswith((".init.", ".exit.")):
            return SectionClass.INIT
    else:
        for prefix, section_class in _CLASS_BY_NAME_PREFIX:
            if section.name.startswith(prefix) and section_class is SectionClass.INIT:
                return section_class
    if section.is_exec:
        return SectionClass.TEXT
    if not section.has_bits:
        return SectionClass.BSS
    if section.name.startswith(".rodata") or not section.is_write:
        return SectionClass.RODATA
    return SectionClass.DATA


def is_listed_by_size(section: Section) -> bool:
    if section.index == 0 or section.name in _NOT_LISTED:
        return False
    # By type, not name: 6.12's runtime-const sections leave `.relaruntime_shift_d_hash_shift`.
    return not (not section.is_alloc and section.elf_type in _RELOCATION_TYPES)


def layout_of(image: KernelImage) -> str:
    """A digest of the sections ``size -A`` lists (names and sizes): two files of one build
    (one stripped of its debug sections by ``objcopy --strip-debug``, which keeps the build
    id) have different layouts and keep different censuses."""
    listed = "\0".join(f"{s.name}\0{s.size}" for s in image.sections if is_listed_by_size(s))
    return f"{zlib.crc32(listed.encode()):08x}"


def init_range(symbols: SymbolTable) -> tuple[int, int] | None:
    begin = symbols.address_of("__init_begin")
    end = symbols.address_of("__init_end")
    if begin is None or end is None or end <= begin:
        return None
    return (begin, end)


# kernel/module/main.c 6.1 rewrite_section_headers(): the loader clears SHF_ALLOC of these.
_MODULE_UNLOADED = frozenset({".modinfo", "__versions"})


def section_classes(image: KernelImage, symbols: SymbolTable) -> dict[str, SectionClass]:
    """Class of every section of ``image`` by name."""
    span = init_range(symbols)
    classes = {section.name: classify_section(section, span) for section in image.sections}
    if image.is_module:
        classes.update((name, SectionClass.OTHER) for name in _MODULE_UNLOADED if name in classes)
    return classes


def listed_sections(image: KernelImage, classes: dict[str, SectionClass]) -> list[ListedSection]:
    """The sections ``size -A`` prints, in file order, with their classes."""
    return [
        ListedSection(name=section.name, size=section.size, section_class=classes[section.name])
        for section in image.sections
        if is_listed_by_size(section)
    ]


def compare_sections(
    base: Sequence[ListedSection], new: Sequence[ListedSection]
) -> list[SectionSize]:
    """One row per section name of either build, BASE order first, NEW-only ones after; each
    build's size under that build's own class of the section."""

    def by_name(sections: Sequence[ListedSection]) -> dict[str, tuple[int, SectionClass]]:
        sizes: dict[str, tuple[int, SectionClass]] = {}
        for section in sections:
            size = sizes[section.name][0] if section.name in sizes else 0
            sizes[section.name] = (size + section.size, section.section_class)
        return sizes

    base_sizes, new_sizes = by_name(base), by_name(new)
    names = list(dict.fromkeys([s.name for s in base] + [s.name for s in new]))
    return [
        SectionSize(
            name=name,
            base_class=base_sizes[name][1] if name in base_sizes else None,
            new_class=new_sizes[name][1] if name in new_sizes else None,
            base_size=base_sizes[name][0] if name in base_sizes else None,
            new_size=new_sizes[name][0] if name in new_sizes else None,
        )
        for name in names
    ]
