"""The symbol table of a vmlinux or module, loaded in bulk, with kallsyms sizes.

``.symtab`` is decoded with one ``struct.iter_unpack`` pass into parallel columns (a Debian
vmlinux has ~200,000 symbols; building a record per symbol up front would dominate load time).
:class:`Symbol` records are made on demand by the lookups.

The **kallsyms size** of a symbol is what an oops prints after the ``/``: the distance from the
symbol to the next symbol *that kallsyms keeps* with a higher address (kernel/kallsyms.c
``get_symbol_pos``, 6.1). Which symbols kallsyms keeps is decided by
:mod:`ltosyms.names.kallsyms` (scripts/mksysmap + scripts/kallsyms.c rules as data).
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import cast, overload

from ltosyms.elf.image import KernelImage, Section
from ltosyms.errors import InputError
from ltosyms.limits import MAX_NAME_BYTES_PER_STRTAB_BYTE, MAX_SYMBOL_NAME_BYTES
from ltosyms.names.kallsyms import (
    KeepRule,
    in_text_ranges,
    kallsyms_order,
    keep_rule_for,
    passes_name_filters,
)
from ltosyms.names.suffixes import SymbolName, parse_name

# ELF st_info (gABI "Symbol Table"): low nibble type, high nibble binding.
SYMBOL_TYPES = {
    0: "NOTYPE",
    1: "OBJECT",
    2: "FUNC",
    3: "SECTION",
    4: "FILE",
    5: "COMMON",
    6: "TLS",
    10: "IFUNC",
}
SYMBOL_BINDS = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK", 10: "UNIQUE"}
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
STT_SECTION = 3
STT_FILE = 4
STB_WEAK = 2
_UNLISTED_TYPES = (STT_SECTION, STT_FILE)  # nm does not print these
_ADDRESS_MASK = (1 << 64) - 1
LOOKUPS_KEPT = 4096  # SymbolTable.lookup's answers kept (each a few hundred bytes at most)
_NOT_KEPT = object()

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Symbol:
    """One ELF symbol with the size an oops would print for it."""

    name: str
    link_address: int
    elf_size: int
    type: str
    bind: str
    section: str
    nm_type: str  # the letter `nm` prints (T, t, D, r, W, ...)
    kallsyms_size: int | None  # None: kallsyms does not keep this symbol
    index: int  # position in .symtab: a stable identity among same-named symbols

    @property
    def end_address(self) -> int:
        return self.link_address + self.elf_size

    @property
    def parsed(self) -> SymbolName:
        return parse_name(self.name)

    @property
    def base_name(self) -> str:
        return parse_name(self.name).base

    @property
    def is_function(self) -> bool:
        return self.type in ("FUNC", "IFUNC") or self.nm_type in "Tt"


def _name_ends(
    image: KernelImage, rows: list[tuple[int, int, int, int, int, int]], strings: bytes
) -> list[int]:
    """Where each symbol's name ends in ``strings`` (.strtab), names cut at
    MAX_SYMBOL_NAME_BYTES; a table whose names would add up to more than
    MAX_NAME_BYTES_PER_STRTAB_BYTE times its size is refused (see :mod:`ltosyms.limits`).

    Every search for a name's NUL stops at the bound: name offsets that make each name run
    to the end of a large section cost neither a scan nor a copy of that section per symbol.
    """
    find, limit = strings.find, MAX_SYMBOL_NAME_BYTES
    ends = [find(b"\0", row[0], row[0] + limit + 1) for row in rows]
    cut = 0
    if rows and min(ends) < 0:
        for position, end in enumerate(ends):
            if end >= 0:
                continue
            start = rows[position][0]
            if start + limit >= len(strings):
                raise InputError(f"{image.path}: a symbol name runs past the end of .strtab")
            ends[position] = start + limit
            cut += 1
    name_bytes = sum(ends) - sum(row[0] for row in rows)
    if name_bytes > MAX_NAME_BYTES_PER_STRTAB_BYTE * len(strings) + limit:
        raise InputError(
            f"{image.path}: .strtab is damaged: its {len(strings):,} bytes would give "
            f"{name_bytes:,} bytes of symbol names (names overlap)"
        )
    if cut:
        log.warning(
            "%s: %d symbol names are longer than %d bytes and cut there (kallsyms keeps no "
            "name longer than 511)",
            image.path,
            cut,
            limit,
        )
    return ends


def _section_letter(section: Section) -> str:
    # binutils 2.40 bfd/syms.c decode_section_type() over the flags bfd/elf.c gives an ELF
    # section (SEC_CODE from SHF_EXECINSTR, SEC_DATA only for allocated PROGBITS, SEC_READONLY
    # from !SHF_WRITE); llvm-nm 14 getSymbolNMTypeChar() decides the same way. A non-allocated,
    # writable PROGBITS section gets '?': the kernel's empty `.data_nosave` (x86
    # `__nosave_begin`/`__nosave_end` print as `?` in System.map, and kallsyms keeps them).
    if section.is_exec:
        return "t"
    if not section.has_bits:
        return "b"
    if section.is_alloc:
        return "d" if section.is_write else "r"
    if section.name.startswith(".debug"):
        return "N"
    return "?" if section.is_write else "n"


def nm_type_letter(info: int, shndx: int, section_letters: Sequence[str]) -> str:
    """The type letter ``nm`` prints (binutils bfd_decode_symclass), ``?`` when unknown."""
    symbol_type, bind = info & 0xF, info >> 4
    if shndx == SHN_UNDEF:
        return ("v" if symbol_type == 1 else "w") if bind == STB_WEAK else "U"
    if bind == 10:
        return "u"
    if bind == STB_WEAK:
        return "V" if symbol_type == 1 else "W"
    if shndx == SHN_COMMON:
        return "C"
    if symbol_type == 10:
        return "i"
    if shndx == SHN_ABS:
        letter = "a"
    elif shndx < len(section_letters):
        letter = section_letters[shndx]
    else:
        letter = "?"
    return letter.upper() if bind != 0 else letter


class NameColumn(Sequence[str]):
    """Symbol names kept as one text and the offset of each (as the index keeps them): a
    stored table's names are not split into 120,000 objects when loaded, only the ones
    looked at are made.

    The text is a ``str``, or the names' UTF-8 bytes as mapped from the index when every name
    is ASCII (the offsets, which count characters, then count bytes too): a decode looks at a
    few hundred of Debian 6.1's 2.8 MB of names, and decoding them all into a new string
    costs more than the lookups (the new string's pages are fresh memory, each a page fault).
    """

    __slots__ = ("_decoded", "_offsets", "_text")

    def __init__(self, text: str | memoryview, offsets: Sequence[int]) -> None:
        # The names, each followed by "\0" but the last.
        self._text: str | memoryview = text
        if not isinstance(text, str) and len(text) != max(offsets[-1] - 1, 0):
            self._text = str(text, "utf-8")  # some name is not ASCII: offsets count characters
        self._offsets = offsets  # where name i starts; one more entry past the end
        # Names decoded from the bytes, by index: every lookup by name bisects the name order,
        # and its first probes are the same names each time.
        self._decoded: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        offsets = self._offsets
        text = self._text
        if isinstance(text, str):
            return text[offsets[index] : offsets[index + 1] - 1]
        name = self._decoded.get(index)
        if name is None:
            # ASCII by its length; a byte damaged under a valid checksum reads as U+FFFD.
            name = str(text[offsets[index] : offsets[index + 1] - 1], "utf-8", "replace")
            self._decoded[index] = name
        return name

    def __iter__(self) -> Iterator[str]:
        if not len(self):
            return iter(())
        text = self._text
        if not isinstance(text, str):
            text = str(text, "utf-8", "replace")
        return iter(text.split("\0"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SymbolColumns:
    """A symbol table as the parallel columns it is made of, in ``.symtab`` order: what the
    index keeps of it (:meth:`SymbolTable.columns`, :meth:`SymbolTable.from_columns`). Read
    back from the index the columns are memoryviews over the mapped file."""

    names: Sequence[str]
    link_addresses: Sequence[int]
    elf_sizes: Sequence[int]  # cut at the top of the address space
    infos: Sequence[int]  # st_info: type and binding
    shndxs: Sequence[int]  # st_shndx
    nm_types: Sequence[str]  # one letter each
    kallsyms_sizes: Sequence[int]  # 0 where kallsyms does not keep the symbol
    kallsyms_kept: Sequence[int]  # 1 where kallsyms keeps it, 0 elsewhere
    kept_indexes: Sequence[int]  # the kept symbols in address order, ties in .symtab order
    kept_addresses: Sequence[int]  # their link addresses
    name_order: Sequence[int]  # defined, listed symbols in name order (SymbolTable lookups)
    rule: KeepRule


class SymbolTable:
    """All named, defined-or-not symbols of an image, in ``.symtab`` order, plus indexes.

    Columns are lists when read from the ELF and packed arrays when loaded from the index
    (:meth:`from_columns`): readers index and iterate them, nothing writes them after
    construction."""

    names: Sequence[str]
    link_addresses: Sequence[int]
    elf_sizes: Sequence[int]
    _infos: Sequence[int]
    _shndxs: Sequence[int]
    nm_types: Sequence[str]
    _sizes: Sequence[int]
    _sized: Sequence[int]
    kept_indexes: Sequence[int]
    _kept_addresses: Sequence[int]

    def __init__(self, image: KernelImage, rule: KeepRule | None = None) -> None:
        self.image = image
        self.machine = image.machine
        symtab = image.get_section(".symtab")
        if symtab is None:
            raise InputError(f"{image.path}: has no .symtab")
        link = symtab.link
        # sh_link names the symbol string table (gABI "Section Header"); a damaged one may not.
        if not 0 < link < len(image.sections) or not image.sections[link].has_bits:
            raise InputError(f"{image.path}: .symtab links to no string table (section {link})")
        strtab = image.sections[link]
        raw_symbols = image.section_bytes(symtab)
        strings = image.section_bytes(strtab)
        if len(raw_symbols) % 24:
            raise InputError(f"{image.path}: .symtab size is not a multiple of 24 bytes")
        endian = "<" if image.little_endian else ">"
        section_letters = [_section_letter(s) for s in image.sections]
        section_addresses = [s.link_address for s in image.sections]
        # Column-wise: one unpack pass, then list comprehensions (a Python loop with six appends
        # per symbol costs twice as much on a 120,000-symbol vmlinux).
        rows = list(struct.iter_unpack(endian + "IBBHQQ", raw_symbols))
        names_end = _name_ends(image, rows, strings)
        names: list[str] = [
            strings[row[0] : end].decode("utf-8", "replace")
            for row, end in zip(rows, names_end, strict=True)
        ]
        infos: list[int] = [row[1] for row in rows]
        shndxs: list[int] = [row[3] for row in rows]
        if image.is_module:
            # The module loader adds the section's address in u64 arithmetic (kernel/module/
            # main.c simplify_symbols): a value near 2**64 wraps, it does not grow a 65th bit.
            number_of_sections = len(image.sections)
            addresses: list[int] = [
                (row[4] + section_addresses[row[3]]) & _ADDRESS_MASK
                if 0 < row[3] < number_of_sections
                else row[4]
                for row in rows
            ]
        else:
            addresses = [row[4] for row in rows]
        # A symbol cannot end past the top of the address space: a size that says so (a
        # damaged or hostile st_size) is cut there, so that every end is a u64 as it is stored.
        sizes: list[int] = [
            row[5] if row[5] <= _ADDRESS_MASK - address else _ADDRESS_MASK - address
            for row, address in zip(rows, addresses, strict=True)
        ]
        # Few distinct (st_info, st_shndx) pairs: the nm letter is worked out once per pair.
        letter_of: dict[tuple[int, int], str] = {}
        letters = []
        for key in zip(infos, shndxs, strict=True):
            letter = letter_of.get(key)
            if letter is None:
                letter = letter_of[key] = nm_type_letter(key[0], key[1], section_letters)
            letters.append(letter)
        self.names = names
        self.link_addresses = addresses
        self.elf_sizes = sizes
        self._infos = infos
        self._shndxs = shndxs
        self.nm_types = letters
        if image.is_module:
            self.rule = rule or keep_rule_for(self)
            self._set_kallsyms_sizes(self._compute_module_kallsyms_sizes())
        else:
            # The name/type filters run once; the rule's text ranges only cut that list down.
            filtered = [
                i
                for i, (name, info, letter) in enumerate(zip(names, infos, letters, strict=True))
                if name
                and (info & 0xF) not in (STT_SECTION, STT_FILE)
                and passes_name_filters(name, letter)
            ]
            self.rule = rule or keep_rule_for(self, filtered=filtered)
            self._set_kallsyms_sizes(self._compute_kallsyms_sizes(filtered))

    def _set_kallsyms_sizes(self, sizes: list[int | None]) -> None:
        # The columns records are made from (and stored): a size, and whether there is one;
        # kallsyms_sizes gives the list form back to the callers that want it.
        self._sizes = [0 if size is None else size for size in sizes]
        self._sized = bytes(size is not None for size in sizes)

    @cached_property
    def kallsyms_sizes(self) -> list[int | None]:
        """Per symbol, the size an oops prints; None where kallsyms does not keep it."""
        return [
            size if sized else None for size, sized in zip(self._sizes, self._sized, strict=True)
        ]

    # -- columns --------------------------------------------------------------------------------

    def columns(self) -> SymbolColumns:
        """The table's columns (the name order is worked out if it was not yet)."""
        return SymbolColumns(
            names=self.names,
            link_addresses=self.link_addresses,
            elf_sizes=self.elf_sizes,
            infos=self._infos,
            shndxs=self._shndxs,
            nm_types=self.nm_types,
            kallsyms_sizes=self._sizes,
            kallsyms_kept=self._sized,
            kept_indexes=self.kept_indexes,
            kept_addresses=self._kept_addresses,
            name_order=self._name_order,
            rule=self.rule,
        )

    @classmethod
    def from_columns(cls, image: KernelImage, columns: SymbolColumns) -> SymbolTable:
        """The table of ``image`` whose columns :meth:`columns` gave; :class:`ValueError`
        when they do not fit together. Nothing is copied: a table read back from the index
        reads its memory-mapped columns as the lookups touch them."""
        count = len(columns.names)
        if not (
            count
            == len(columns.link_addresses)
            == len(columns.elf_sizes)
            == len(columns.infos)
            == len(columns.shndxs)
            == len(columns.nm_types)
            == len(columns.kallsyms_sizes)
            == len(columns.kallsyms_kept)
        ) or len(columns.kept_indexes) != len(columns.kept_addresses):
            raise ValueError("symbol table columns differ in length")
        # Both index lists are sorted by something else than the index: their last entries
        # are as likely as any to be out of range.
        if any(i >= count for i in (*columns.kept_indexes[-1:], *columns.name_order[-1:])):
            raise ValueError("symbol table columns name symbols it does not have")
        table = cls.__new__(cls)
        table.image = image
        table.machine = image.machine
        table.names = columns.names
        table.link_addresses = columns.link_addresses
        table.elf_sizes = columns.elf_sizes
        table._infos = columns.infos
        table._shndxs = columns.shndxs
        table.nm_types = columns.nm_types
        table._sizes = columns.kallsyms_sizes
        table._sized = columns.kallsyms_kept
        table.kept_indexes = columns.kept_indexes
        table._kept_addresses = columns.kept_addresses
        table.__dict__["_name_order"] = columns.name_order  # the cached property, given
        table.rule = columns.rule
        return table

    # -- kallsyms -------------------------------------------------------------------------------

    def is_listed(self, index: int) -> bool:
        """True for symbols ``nm`` prints: named, not a section or file symbol."""
        info = self._infos[index]
        return bool(self.names[index]) and (info & 0xF) not in (STT_SECTION, STT_FILE)

    def _compute_kallsyms_sizes(self, filtered: list[int]) -> list[int | None]:
        """Distance to the next kept symbol with a higher address (kernel/kallsyms.c 6.1)."""
        rule, names, addresses = self.rule, self.names, self.link_addresses
        keep = (
            list(filtered)
            if rule.all_symbols
            else [i for i in filtered if in_text_ranges(rule, names[i], addresses[i])]
        )
        self.kept_indexes = keep
        addresses = self.link_addresses
        keep.sort(key=addresses.__getitem__)
        sizes: list[int | None] = [None] * len(self.names)
        kept_addresses = [addresses[i] for i in keep]
        count = len(keep)
        position = 0
        while position < count:
            start = kept_addresses[position]
            following = position + 1
            while following < count and kept_addresses[following] == start:
                following += 1
            if following < count:
                size = kept_addresses[following] - start
            else:
                size = max(self.rule.last_symbol_end - start, 0)
            for i in range(position, following):
                sizes[keep[i]] = size
            position = following
        self._kept_addresses = kept_addresses
        return sizes

    def _compute_module_kallsyms_sizes(self) -> list[int | None]:
        """Sizes as a loaded module prints them (kernel/module/kallsyms.c 6.1).

        ``find_kallsyms_symbol`` starts with ``nextval`` = end of the module's (core or init)
        text and lowers it to the next symbol above the address. For an address past the text
        (an oops executing module data) no symbol is below that bound, and the unsigned
        subtraction wraps: the kernel really prints ``data_area+0x0/0xffff...``.
        """
        sections = self.image.sections
        exec_sections = [s for s in sections if s.is_alloc and s.is_exec and s.size]
        init_exec = [s for s in exec_sections if s.name.startswith(".init")]
        core_exec = [s for s in exec_sections if not s.name.startswith(".init")]
        core_text_end = max((s.end_address for s in core_exec), default=0)
        init_text_end = max((s.end_address for s in init_exec), default=0)
        keep = []
        for index, name in enumerate(self.names):
            shndx = self._shndxs[index]
            # is_core_symbol()/is_mapping_symbol(): named, defined, in an allocated section.
            if (
                not name
                or not self.is_listed(index)
                or not 0 < shndx < len(sections)
                or not sections[shndx].is_alloc
                or (not self.rule.all_symbols and not sections[shndx].is_exec)
                or name.startswith(("$", ".L", "L0"))
            ):
                continue
            keep.append(index)
        addresses = self.link_addresses
        keep.sort(key=addresses.__getitem__)  # address order, ties in .symtab order
        self.kept_indexes = keep
        starts = sorted({addresses[i] for i in keep})
        sizes: list[int | None] = [None] * len(self.names)
        for index in keep:
            address = addresses[index]
            in_init = any(s.contains(address) for s in init_exec)
            bound = init_text_end if in_init else core_text_end
            position = bisect.bisect_right(starts, address)
            following = starts[position] if position < len(starts) else bound
            next_value = following if following < bound else bound
            sizes[index] = (next_value - address) & 0xFFFF_FFFF_FFFF_FFFF
        self._kept_addresses = [addresses[i] for i in keep]
        return sizes

    @property
    def kept_count(self) -> int:
        return len(self.kept_indexes)

    # -- records --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.names)

    def symbol(self, index: int) -> Symbol:
        record = self._records.get(index)
        if record is None:
            record = self._records[index] = self._make_symbol(index)
        return record

    @cached_property
    def _records(self) -> dict[int, Symbol]:
        # Lookups return the same few hundred symbols over and over in a long log.
        return {}

    def _make_symbol(self, index: int) -> Symbol:
        info = self._infos[index]
        shndx = self._shndxs[index]
        sections = self.image.sections
        if shndx == SHN_ABS:
            section = "*ABS*"
        elif shndx == SHN_UNDEF:
            section = "*UND*"
        elif shndx < len(sections):
            section = sections[shndx].name
        else:
            section = f"*{shndx:#x}*"
        return Symbol(
            name=self.names[index],
            link_address=self.link_addresses[index],
            elf_size=self.elf_sizes[index],
            type=SYMBOL_TYPES.get(info & 0xF, str(info & 0xF)),
            bind=SYMBOL_BINDS.get(info >> 4, str(info >> 4)),
            section=section,
            nm_type=self.nm_types[index],
            kallsyms_size=self._sizes[index] if self._sized[index] else None,
            index=index,
        )

    def __iter__(self) -> Iterator[Symbol]:
        return (self.symbol(i) for i in range(len(self.names)) if self.is_listed(i))

    def is_defined(self, index: int) -> bool:
        return self._shndxs[index] != SHN_UNDEF

    def is_absolute(self, index: int) -> bool:
        return self._shndxs[index] == SHN_ABS

    # -- lookups --------------------------------------------------------------------------------

    @cached_property
    def _name_order(self) -> Sequence[int]:
        """Defined, listed symbols sorted by name (then .symtab order): exact names and names
        sharing a prefix are contiguous, found by bisection. Stored with the table, so a warm
        decode builds no name index over the ~120,000 symbols of a vmlinux."""
        infos, shndxs, names = self._infos, self._shndxs, self.names
        listed = [
            index
            for index, name in enumerate(names)
            if name and shndxs[index] != SHN_UNDEF and infos[index] & 0xF not in _UNLISTED_TYPES
        ]
        listed.sort(key=names.__getitem__)  # stable: equal names stay in .symtab order
        return listed

    @cached_property
    def _lookups(self) -> dict[tuple[bool, str], list[int]]:
        # A long log asks for the same few hundred names again and again.
        return {}

    def _indexes_named(self, name: str) -> list[int]:
        return self._remembered(False, name, self._find_named)

    def _remembered(self, by_base: bool, text: str, find: Callable[[str], list[int]]) -> list[int]:
        found = self._lookups.get((by_base, text))
        if found is None:
            found = self._lookups[(by_base, text)] = find(text)
        return found

    def _find_named(self, name: str) -> list[int]:
        return self._run_from(name, name.__eq__)

    def _indexes_with_prefix(self, prefix: str) -> list[int]:
        return self._run_from(prefix, lambda name: name.startswith(prefix))

    def _run_from(self, probe: str, belongs: Callable[[str], bool]) -> list[int]:
        """The symbols, in name order, from the first name >= ``probe`` while ``belongs``."""
        order, names = self._name_order, self.names
        position = bisect.bisect_left(order, probe, key=names.__getitem__)
        found = []
        while position < len(order) and belongs(names[order[position]]):
            found.append(order[position])
            position += 1
        return found

    def _base_indexes(self, base: str) -> list[int]:
        return self._remembered(True, base, self._find_base)

    def _find_base(self, base: str) -> list[int]:
        # Every name with base ``foo`` is ``foo`` itself or starts with ``foo.`` (a base with a
        # dot after its first character: starts with the part before that dot, plus the dot),
        # so only the few names with that prefix are parsed, not the whole table.
        dot = base.find(".", 1)
        if dot > 0:
            candidates = self._indexes_with_prefix(base[: dot + 1])
        else:
            candidates = self._indexes_named(base) + self._indexes_with_prefix(base + ".")
        # Grouped by name, names in the order of their first .symtab entry (a stable order the
        # stored table reproduces).
        groups: dict[str, list[int]] = {}
        for index in sorted(candidates):
            name = self.names[index]
            if parse_name(name).base == base:
                groups.setdefault(name, []).append(index)
        return [index for indexes in groups.values() for index in indexes]

    @property
    def _address_order(self) -> tuple[Sequence[int], Sequence[int]]:
        """Kept symbols sorted by address, for the kernel's own address -> symbol lookup."""
        # kept_indexes is in address order already, equal addresses in .symtab order.
        return self._kept_addresses, self.kept_indexes

    def by_name(self, name: str) -> list[Symbol]:
        """Every defined symbol with exactly this ELF name (duplicates of statics included)."""
        return [self.symbol(i) for i in self._indexes_named(name)]

    def by_name_prefix(self, prefix: str) -> list[Symbol]:
        """Every defined symbol whose name starts with ``prefix`` (``foo.`` finds ``foo.cold``,
        ``foo.llvm.1``, ``foo.31``), in name order; found by bisection, not by a scan."""
        # "\0" keeps these answers apart from exact-name ones in the lookup memo.
        indexes = self._remembered(
            False, "\0" + prefix, lambda key: self._indexes_with_prefix(key[1:])
        )
        return [self.symbol(i) for i in indexes]

    def by_name_or_continued(
        self, name: str, separators: str
    ) -> tuple[list[Symbol], list[list[Symbol]]]:
        """Every defined symbol named ``name``, and for each of ``separators`` those whose name
        is ``name``, that separator and more (as :meth:`by_name` and :meth:`by_name_prefix`
        give them): found by one bisection, as all of them follow ``name`` in name order."""
        key = "\1" + separators + "\0" + name  # apart from the other answers in the memo
        indexes = self._remembered(
            False, key, lambda _key: self._named_or_continued(name, separators)
        )
        exact = [self.symbol(i) for i in indexes if len(self.names[i]) == len(name)]
        continued = [
            [self.symbol(i) for i in indexes if self.names[i][len(name) : len(name) + 1] == mark]
            for mark in separators
        ]
        return exact, continued

    def _named_or_continued(self, name: str, separators: str) -> list[int]:
        # Past `name` come the names it starts, in the order of the character after it: the
        # run ends at the first one going on with a character past every separator.
        last = max(separators)
        size = len(name)
        return self._run_from(
            name, lambda other: other.startswith(name) and other[size : size + 1] <= last
        )

    def by_base_name(self, base: str) -> list[Symbol]:
        """Every defined symbol whose name parses to ``base`` (``foo``, ``foo.llvm.1``, ...)."""
        return [self.symbol(i) for i in self._base_indexes(base)]

    def lookup(self, link_address: int) -> Symbol | None:
        """The kallsyms symbol an oops would print for ``link_address`` (kernel semantics:
        the kept symbol with the highest start <= address, if the address is inside its size)."""
        # The stages of one answer ask for the same addresses again (the frame's function for
        # its call site, a call's target for its thunk test and for its name): the last few
        # thousand answers are kept.
        kept = self._looked_up
        found = kept.get(link_address, _NOT_KEPT)  # one probe; safe if another thread clears
        if found is not _NOT_KEPT:
            return cast("Symbol | None", found)
        symbol = self._lookup(link_address)
        if len(kept) >= LOOKUPS_KEPT:
            kept.clear()
        kept[link_address] = symbol
        return symbol

    @cached_property
    def _looked_up(self) -> dict[int, Symbol | None]:
        return {}

    def _lookup(self, link_address: int) -> Symbol | None:
        addresses, order = self._address_order
        position = bisect.bisect_right(addresses, link_address) - 1
        if position < 0:
            return None
        start = addresses[position]
        if position and addresses[position - 1] == start:
            first = bisect.bisect_left(addresses, start, 0, position)
            best = self._printed_alias([order[i] for i in range(first, position + 1)])
        else:
            best = order[position]
        symbol = self.symbol(best)
        if symbol.kallsyms_size is not None and link_address >= start + symbol.kallsyms_size:
            return None
        return symbol

    def _printed_alias(self, aliases: list[int]) -> int:
        """The one of ``aliases`` (kept symbols at one address) an oops prints
        (docs/kernel-facts.md#printed-names): in a module the first of its symbol table
        (find_kallsyms_symbol() keeps the first symbol at the best value), in a vmlinux the
        first in kallsyms order (:func:`kallsyms_order`)."""
        if self.image.is_module:
            return min(aliases)
        names, letters = self.names, self.nm_types
        return min(aliases, key=lambda i: (kallsyms_order(names[i], letters[i]), i))

    def next_start_after(self, link_address: int) -> int | None:
        """The lowest start above ``link_address`` of a symbol kallsyms keeps."""
        addresses, _order = self._address_order
        position = bisect.bisect_right(addresses, link_address)
        return addresses[position] if position < len(addresses) else None

    def symbols_at(self, link_address: int) -> list[Symbol]:
        """Every kept symbol that starts exactly at ``link_address`` (aliases)."""
        addresses, order = self._address_order
        first = bisect.bisect_left(addresses, link_address)
        last = bisect.bisect_right(addresses, link_address)
        return [self.symbol(order[i]) for i in range(first, last)]

    def widest_alias(self, symbol: Symbol) -> Symbol:
        """Of ``symbol`` and its aliases (the kept symbols at its start), the one whose ELF
        extent says most of what is there: a function before a label, then the largest size.
        kallsyms prints the first in its own order, which may be a label of size 0 (`_stext`
        over `__startup_64`, `btf_tracing_ids`); code that needs the extent takes this one."""
        return max(
            self.symbols_at(symbol.link_address) or [symbol],
            key=lambda alias: (alias.is_function, alias.elf_size),
        )

    def function_containing(self, link_address: int) -> Symbol | None:
        """The FUNC symbol whose ELF extent holds ``link_address`` (ignores kallsyms rules)."""
        starts, order = self._function_order
        position = bisect.bisect_right(starts, link_address) - 1
        while position >= 0:
            index = order[position]
            if starts[position] <= link_address < starts[position] + max(self.elf_sizes[index], 1):
                return self.symbol(index)
            if link_address - starts[position] > 1 << 20:
                break
            position -= 1
        return None

    @cached_property
    def _function_order(self) -> tuple[list[int], list[int]]:
        order = sorted(
            (i for i in range(len(self.names)) if self._is_func(i) and self.is_defined(i)),
            key=lambda i: (self.link_addresses[i], i),
        )
        return [self.link_addresses[i] for i in order], order

    def _is_func(self, index: int) -> bool:
        return (self._infos[index] & 0xF) in (2, 10)

    def address_of(self, name: str) -> int | None:
        """Link address of a unique symbol (None when absent; first one when duplicated)."""
        if "_name_order" in self.__dict__:
            indexes = self._indexes_named(name)
            return self.link_addresses[indexes[0]] if indexes else None
        # A few lookups need no name index: list.index scans in C.
        names = self.names
        start = 0
        while True:
            try:
                index = names.index(name, start)
            except ValueError:
                return None
            if self._shndxs[index] != SHN_UNDEF and self._infos[index] & 0xF not in (
                _UNLISTED_TYPES
            ):
                return self.link_addresses[index]
            start = index + 1
