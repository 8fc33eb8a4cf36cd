"""Turn one build's symbol table into :class:`SymbolGroup` records (what the diff compares).

Which symbols count: defined, sized (``st_size > 0``, as ``nm --size-sort`` lists them) and in
a section that is loaded. Symbols at the same address with the same size are aliases
(``memcpy``/``__memcpy``, gcc's ``.localalias``): their bytes are counted once, under the
owner's group, and their names are kept beside the owner's. Defined symbols of size 0 make
groups of their own, kept apart: they count no bytes, but they tell a symbol that became empty
(clang ThinLTO gives the lockdep keys ``alloc_tty_struct.__key`` size 0) from one that is gone.

Where a symbol comes from, in order of trust:
1. DWARF: the compilation unit of the function (``DW_TAG_subprogram`` whose code holds the
   symbol) or of the variable (``DW_AT_location`` = ``DW_OP_addr`` of the symbol);
2. the ``STT_FILE`` symbol the linker placed before the object file's local symbols (a base
   name such as ``main.c``; promoted ThinLTO locals and globals have none);
3. for clang ThinLTO promoted locals, the ``.llvm.<hash>`` module hash, which differs between
   modules, so two promoted statics ``foo`` of different files stay apart.
"""

from __future__ import annotations

import functools
import struct
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from ltosyms.diff.model import SectionClass, SymbolGroup, SymbolKind, new_group
from ltosyms.elf.image import KernelImage
from ltosyms.elf.symtab import SymbolTable
from ltosyms.names.suffixes import SuffixKind, SymbolName, parse_name

if TYPE_CHECKING:
    from ltosyms.dwarf import DwarfCensus


class _Candidate(NamedTuple):
    """One sized symbol of a loaded section. A named tuple, not a frozen dataclass: a Debian
    vmlinux has 150,000 of them and frozen-dataclass construction would dominate the diff."""

    symbol_index: int
    name: str
    link_address: int
    elf_size: int
    nm_type: str
    is_function: bool
    section_class: SectionClass
    is_global: bool
    is_typed: bool  # STT_FUNC / STT_OBJECT rather than STT_NOTYPE
    file_symbol: str | None
    parsed: SymbolName

    @property
    def kind(self) -> SymbolKind:
        return SymbolKind.FUNCTION if self.is_function else SymbolKind.OBJECT


# A candidate from its fields in order, made in C (the named tuple's own __new__ is a Python
# function: a call per symbol, 64,000 per corpus kernel).
_new_candidate = functools.partial(tuple.__new__, _Candidate)


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildSymbols:
    """The groups of one build plus the byte counts the reconciliation needs."""

    groups: list[SymbolGroup]
    symbol_bytes: dict[SectionClass, int]  # distinct sized symbols, per section class
    empty_groups: list[SymbolGroup]  # defined symbols of size 0, grouped the same way


def build_groups(
    image: KernelImage,
    symbols: SymbolTable,
    classes: dict[str, SectionClass],
    census: DwarfCensus | None,
) -> BuildSymbols:
    sized: list[_Candidate] = []
    empty: list[_Candidate] = []
    for candidate in _candidates(image, symbols, classes):
        (sized if candidate.elf_size else empty).append(candidate)
    groups, symbol_bytes = _groups(sized, census)
    # Symbols of size 0 at one address are not aliases of one another (ThinLTO puts all the
    # empty lockdep keys at one address), and DWARF cannot tell whose they are: grouped by
    # name and STT_FILE only.
    empty_groups, _none = _groups(empty, None, fold_aliases=False)
    return BuildSymbols(groups=groups, symbol_bytes=symbol_bytes, empty_groups=empty_groups)


def _groups(
    candidates: list[_Candidate], census: DwarfCensus | None, *, fold_aliases: bool = True
) -> tuple[list[SymbolGroup], dict[SectionClass, int]]:
    owners, aliases = _fold_aliases(candidates) if fold_aliases else (candidates, {})
    # Keys hold `is_function` rather than the kind: enum hashing dominates at 200,000 symbols.
    keyed: dict[tuple[bool, str, str], list[_Candidate]] = defaultdict(list)
    unit_of: dict[int, str | None] = {}
    dwarf_of: dict[int, tuple[str | None, str | None]] = {}
    for candidate in owners:
        base = candidate.parsed.base
        unit, dwarf_name, decl_file = _dwarf_source(candidate, base, census)
        unit_of[candidate.symbol_index] = unit
        dwarf_of[candidate.symbol_index] = (dwarf_name, decl_file)
        keyed[(candidate.is_function, base, _origin(candidate, unit))].append(candidate)
    _attach_orphan_clones(keyed)
    # By the class's value (`_value_`, an instance attribute): Enum's hash and `.value` are
    # Python functions, a cost at 30,000 symbols per image.
    symbol_bytes: dict[str, int] = defaultdict(int)
    groups = []
    for (is_function, base, _origin_key), members in keyed.items():
        if len(members) > 1:
            members.sort(key=lambda c: (_main_rank(c), c.link_address, c.symbol_index))
        main = members[0]
        names: list[str] = []
        indexes: list[int] = []
        alias_names: list[str] = []
        size = 0
        is_global = False
        for member in members:
            names.append(member.name)
            indexes.append(member.symbol_index)
            symbol_bytes[member.section_class._value_] += member.elf_size
            size += member.elf_size
            is_global = is_global or member.is_global
            member_aliases = aliases.get(member.symbol_index)
            if member_aliases:
                for alias in member_aliases:
                    names.append(alias.name)
                    indexes.append(alias.symbol_index)
                    alias_names.append(alias.name)
        dwarf_name, decl_file = dwarf_of[main.symbol_index]
        groups.append(
            new_group(
                (  # SymbolGroup's fields in order: made in C (see new_group)
                    SymbolKind.FUNCTION if is_function else SymbolKind.OBJECT,  # kind
                    base,  # base_name
                    tuple(names),  # names
                    size,  # size
                    main.link_address,  # link_address
                    main.section_class,  # section_class
                    unit_of[main.symbol_index],  # unit
                    main.file_symbol,  # file_symbol
                    dwarf_name,  # dwarf_name
                    decl_file,  # decl_file
                    is_global,  # is_global
                    tuple(indexes),  # symbol_indexes
                    main.nm_type,  # nm_type
                    len(members),  # member_count
                    tuple(alias_names),  # alias_names
                )
            )
        )
    groups.sort(key=lambda group: (group.link_address, group.symbol_indexes))
    return groups, {SectionClass(k): v for k, v in symbol_bytes.items()}


def _attach_orphan_clones(keyed: dict[tuple[bool, str, str], list[_Candidate]]) -> None:
    """Move clone-only groups of unknown unit into the one group that has the original.

    Without DWARF, gcc's ``foo.cold`` (local, under its STT_FILE) and a global ``foo`` (under
    none) get different keys; they are one function when ``foo`` is the only non-clone group
    of that base name.
    """
    originals: dict[tuple[bool, str], list[tuple[bool, str, str]]] = defaultdict(list)
    orphans = []
    for key, members in keyed.items():
        if members[0].parsed.suffixes and all(member.parsed.is_clone for member in members):
            orphans.append(key)
        else:
            originals[(key[0], key[1])].append(key)
    for key in orphans:
        if key[2] and not key[2].startswith(("file:", "llvm:", "promoted:")):
            continue  # DWARF gave this clone its own unit: the original is not in this build
        homes = originals.get((key[0], key[1]), [])
        if len(homes) == 1:
            keyed[homes[0]].extend(keyed.pop(key))


# ELF gABI "Symbol Table": st_info type and binding values used here.
_STT_NOTYPE, _STT_OBJECT, _STT_FUNC, _STT_FILE, _STT_IFUNC = 0, 1, 2, 4, 10
_STB_LOCAL = 0
_SHN_LORESERVE = 0xFF00


def _candidates(
    image: KernelImage, symbols: SymbolTable, classes: dict[str, SectionClass]
) -> Iterable[_Candidate]:
    """Defined symbols of loaded sections (size 0 included), in .symtab order, with their
    STT_FILE."""
    section_class = [
        loaded if (loaded := classes.get(section.name)) and loaded.is_loaded else None
        for section in image.sections
    ]
    section_exec = [section.is_exec for section in image.sections]
    section_count = len(image.sections)
    names = symbols.names
    addresses = symbols.link_addresses
    sizes = symbols.elf_sizes
    nm_types = symbols.nm_types
    file_symbol: str | None = None
    for index, (info, other, shndx) in enumerate(_raw_symbol_fields(image)):
        symbol_type = info & 0xF
        if symbol_type == _STT_FILE:
            # ELF gABI: STT_FILE precedes the local symbols of its file.
            file_symbol = names[index] or None
            continue
        if not shndx or shndx >= _SHN_LORESERVE or shndx >= section_count:
            continue
        loaded_class = section_class[shndx]
        if loaded_class is None or not names[index]:
            continue
        if symbol_type not in (_STT_NOTYPE, _STT_OBJECT, _STT_FUNC, _STT_IFUNC) and (
            symbol_type != 6  # STT_TLS
        ):
            continue
        is_global = info >> 4 != _STB_LOCAL
        is_function = symbol_type in (_STT_FUNC, _STT_IFUNC) or (
            symbol_type == _STT_NOTYPE and section_exec[shndx]
        )
        # STV_HIDDEN / STV_INTERNAL locals are globals the linker made local (ThinLTO-promoted
        # statics): like globals they come after all file groups and belong to no STT_FILE.
        hidden = other & 0x3 in (1, 2)
        yield _new_candidate(
            (
                index,
                names[index],
                addresses[index],
                sizes[index],
                nm_types[index],
                is_function,
                loaded_class,
                is_global,
                symbol_type != _STT_NOTYPE,
                file_symbol if not is_global and not hidden else None,
                parse_name(names[index]),
            )
        )


def _raw_symbol_fields(image: KernelImage) -> Iterator[tuple[int, int, int]]:
    """(st_info, st_other, st_shndx) of every Elf64_Sym (24 bytes, gABI "Symbol Table").

    The symbol table records keep neither the visibility (``st_other``) nor the raw section
    index; reading the three fields in bulk costs a few milliseconds.
    """
    symtab = image.get_section(".symtab")
    raw = image.section_bytes(symtab) if symtab is not None else b""
    endian = "<" if image.little_endian else ">"
    return struct.iter_unpack(endian + "4xBBH16x", raw[: len(raw) - len(raw) % 24])


def _alias_rank(candidate: _Candidate) -> tuple[bool, bool, int, int, str]:
    """Which of several aliases names the group: typed, global, unsuffixed, fewest leading
    underscores (``memcpy`` over ``__memcpy``), then the name itself, so that both builds pick
    the same owner whatever their .symtab order."""
    parsed = candidate.parsed
    underscores = len(candidate.name) - len(candidate.name.lstrip("_"))
    return (
        not candidate.is_typed,
        not candidate.is_global,
        len(parsed.suffixes),
        underscores,
        candidate.name,
    )


def _fold_aliases(
    candidates: list[_Candidate],
) -> tuple[list[_Candidate], dict[int, list[_Candidate]]]:
    """Owners (one per distinct address and size) and, per owner index, its aliases."""
    by_extent: dict[tuple[int, int, bool], list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        by_extent[(candidate.link_address, candidate.elf_size, candidate.is_function)].append(
            candidate
        )
    owners = []
    aliases: dict[int, list[_Candidate]] = {}
    for same in by_extent.values():
        if len(same) > 1:
            same.sort(key=_alias_rank)
            aliases[same[0].symbol_index] = same[1:]
        owners.append(same[0])
    return owners, aliases


def _dwarf_source(
    candidate: _Candidate, base: str, census: DwarfCensus | None
) -> tuple[str | None, str | None, str | None]:
    """(unit, DWARF function name, declaring file) of a symbol, from DWARF when it says."""
    if census is None:
        return None, None, None
    if candidate.is_function:
        function = census.function_at(candidate.link_address)
        if function is None:
            return None, None, None
        if function.name == base or function.linkage_name == candidate.name:
            return function.unit or None, function.name, function.decl_file
        # An asm label inside another function, or a `.cold` part: same unit, not its name.
        return function.unit or None, None, None
    variable = census.variable_at(candidate.link_address)
    return (variable.unit or None, None, None) if variable is not None else (None, None, None)


# Promotions that number same-named statics apart (clang full LTO's `name_show.31`, gcc LTO's
# `foo.lto_priv.1`): without DWARF the number is what tells two such functions apart, since
# full LTO puts every local under the one STT_FILE `ld-temp.o`.
_NUMBERED_PROMOTIONS = (SuffixKind.NUMERIC, SuffixKind.LTO_PRIV)


def _origin(candidate: _Candidate, unit: str | None) -> str:
    if unit:
        return unit
    numbered = ""
    if candidate.is_function:
        numbered = "".join(
            f".{s.kind.value}.{s.number}"
            for s in candidate.parsed.suffixes
            if s.kind in _NUMBERED_PROMOTIONS
        )
    if candidate.file_symbol:
        return "file:" + candidate.file_symbol + numbered
    for suffix in candidate.parsed.suffixes:
        if suffix.kind is SuffixKind.LLVM:
            return f"llvm:{suffix.number}"
    return "promoted:" + numbered if numbered else ""


def _main_rank(candidate: _Candidate) -> int:
    """The group's main symbol: an unsuffixed or merely promoted name before clones."""
    if candidate.parsed.is_clone:
        return 2
    return 1 if candidate.parsed.suffixes else 0
