"""The symbol table, kept in the index and queried in place.

Loading a Debian vmlinux's ``.symtab`` (119,021 symbols) takes ~0.4 s, and the first lookup by
name, by base name and by address another ~0.5 s to build their in-memory indexes. A decode
asks about a few hundred names and addresses, so a warm decode does better asking SQLite: one
indexed query each (tens of microseconds), no table loaded at all.

:class:`StoredSymbolTable` answers exactly what :class:`ltosyms.elf.symtab.SymbolTable` answers
(same records, same order, same tie-breaks; the tests compare the two on real kernels). Both
satisfy :class:`SymbolLookup`, which is what code that only looks symbols up should accept.
The rows are written from a loaded :class:`~ltosyms.elf.symtab.SymbolTable` with the keep rule
it chose for the image (:func:`ltosyms.names.kallsyms.keep_rule_for`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

from ltosyms.elf.image import KernelImage
from ltosyms.elf.symtab import (
    SHN_ABS,
    SHN_UNDEF,
    STT_FILE,
    STT_SECTION,
    SYMBOL_BINDS,
    SYMBOL_TYPES,
    Symbol,
    SymbolTable,
)
from ltosyms.index.store import IndexStore
from ltosyms.names.suffixes import parse_name

log = logging.getLogger(__name__)

# Bits of the ``flags`` column.
FLAG_LISTED = 1  # named, not a section or file symbol (SymbolTable.is_listed)
FLAG_DEFINED = 2  # st_shndx != SHN_UNDEF
FLAG_KEPT = 4  # kallsyms keeps it: it has a kallsyms size
FLAG_FUNCTION = 8  # ELF type FUNC or IFUNC
_BY_NAME = FLAG_LISTED | FLAG_DEFINED
_FUNCTION = FLAG_FUNCTION | FLAG_DEFINED
_FUNCTION_TYPES = (2, 10)  # STT_FUNC, STT_GNU_IFUNC (gABI "Symbol Table"; glibc elf.h)
_KEPT = f"flags & {FLAG_KEPT} = {FLAG_KEPT}"  # the term of the partial index below

# SymbolTable.function_containing stops walking back once a start is this far below the address.
_FUNCTION_SEARCH_SPAN = 1 << 20

_ADDRESS_BIAS = 1 << 63  # stored link address = address - 2**63, an order-preserving map
_U64 = 1 << 64

_COLUMNS = "idx, name, link_address, elf_size, type, bind, section, nm_type, kallsyms_size"

# Indexes are made after the bulk insert: building them once is faster than keeping them up to
# date row by row.
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS symbol_by_name ON symbol (name)",
    "CREATE INDEX IF NOT EXISTS symbol_by_base_name ON symbol (base_name)",
    # Partial indexes: kept symbols (lookup, symbols_at), function starts (function_containing).
    # A query uses one only when its WHERE has the same term.
    f"CREATE INDEX IF NOT EXISTS symbol_kept_by_address ON symbol (link_address)"
    f" WHERE flags & {FLAG_KEPT} = {FLAG_KEPT}",
    f"CREATE INDEX IF NOT EXISTS symbol_function_by_address ON symbol (link_address)"
    f" WHERE flags & {_FUNCTION} = {_FUNCTION}",
)

T = TypeVar("T")


class SymbolLookup(Protocol):
    """The queries a decode makes; :class:`SymbolTable` and :class:`StoredSymbolTable` both
    answer them."""

    machine: str

    def __len__(self) -> int: ...

    @property
    def kept_count(self) -> int: ...

    def symbol(self, index: int) -> Symbol: ...

    def by_name(self, name: str) -> list[Symbol]: ...

    def by_base_name(self, base: str) -> list[Symbol]: ...

    def names_with_base(self, base: str) -> list[str]: ...

    def lookup(self, link_address: int) -> Symbol | None: ...

    def symbols_at(self, link_address: int) -> list[Symbol]: ...

    def function_containing(self, link_address: int) -> Symbol | None: ...

    def address_of(self, name: str) -> int | None: ...


def has_symbols(store: IndexStore) -> bool:
    """True when ``store`` holds a complete symbol table (rows and marker share a commit)."""
    return store.get_meta("symbols") is not None


def store_symbols(store: IndexStore, table: SymbolTable) -> bool:
    """Write ``table`` into ``store`` in one transaction; False if it could not be written."""
    if has_symbols(store):
        return True
    statements: list[tuple[str, Iterable[Sequence[Any]]]] = [
        # A generator: the 119,021 rows of a Debian vmlinux never exist as one list.
        ("INSERT OR IGNORE INTO symbol VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _rows_of(table)),
    ]
    statements.extend((sql, [()]) for sql in _INDEXES)
    # The longest function bounds how far below an address a function holding it can start.
    extent = max(
        (
            max(table.elf_sizes[index], 1)
            for index in range(len(table))
            if table.is_defined(index) and (table._infos[index] & 0xF) in _FUNCTION_TYPES
        ),
        default=1,
    )
    statements.append(
        (
            "INSERT OR REPLACE INTO header (key, value) VALUES (?, ?)",
            [("function_extent", str(extent)), ("symbols", str(len(table)))],
        )
    )
    return store.write_script(statements)


def load_symbols(image: KernelImage, store: IndexStore | None) -> SymbolLookup:
    """The symbols of ``image``: from ``store`` when it holds them, else from the ELF (and then
    written into ``store`` for next time)."""
    if store is not None and store.usable and has_symbols(store):
        return StoredSymbolTable(image, store)
    table = SymbolTable(image)
    if store is not None and store.usable and not store.read_only:
        store_symbols(store, table)
    return table


def _rows_of(table: SymbolTable) -> Iterator[tuple[Any, ...]]:
    """One ``symbol`` row per .symtab entry, from the table's columns.

    Reads the st_info/st_shndx columns directly: going through ``table.symbol(i)`` for 119,021
    symbols costs 0.5 s of a cold decode. The tests compare the records made from these rows
    with ``SymbolTable.symbol`` for every symbol of real kernels.
    """
    names, addresses, elf_sizes = table.names, table.link_addresses, table.elf_sizes
    nm_types, kallsyms_sizes = table.nm_types, table.kallsyms_sizes
    infos, shndxs = table._infos, table._shndxs
    section_names = [section.name for section in table.image.sections]
    for index, name in enumerate(names):
        info, shndx, kallsyms_size = infos[index], shndxs[index], kallsyms_sizes[index]
        symbol_type = SYMBOL_TYPES.get(info & 0xF) or str(info & 0xF)
        if shndx == SHN_ABS:
            section = "*ABS*"
        elif shndx == SHN_UNDEF:
            section = "*UND*"
        elif shndx < len(section_names):
            section = section_names[shndx]
        else:
            section = f"*{shndx:#x}*"
        flags = (
            (FLAG_LISTED if name and (info & 0xF) not in (STT_SECTION, STT_FILE) else 0)
            | (FLAG_DEFINED if shndx != SHN_UNDEF else 0)
            | (FLAG_KEPT if kallsyms_size is not None else 0)
            | (FLAG_FUNCTION if (info & 0xF) in _FUNCTION_TYPES else 0)
        )
        yield (
            index,
            name,
            # parse_name keeps a name without a dot past its first character as it is.
            parse_name(name).base if name.find(".", 1) > 0 else name,
            addresses[index] - _ADDRESS_BIAS,
            _signed(elf_sizes[index]),
            None if kallsyms_size is None else _signed(kallsyms_size),
            symbol_type,
            SYMBOL_BINDS.get(info >> 4) or str(info >> 4),
            section,
            nm_types[index],
            flags,
        )


class StoredSymbolTable:
    """:class:`SymbolTable`'s queries, answered from the index without loading the table.

    If the store fails or is rebuilt while in use, this loads the table from the ELF and goes
    on with that (and writes it back), so a cache problem never changes an answer.
    """

    def __init__(self, image: KernelImage, store: IndexStore) -> None:
        self.image = image
        self.machine = image.machine
        self._store = store
        self._generation = store.discarded
        self._fallback: SymbolTable | None = None
        self._function_extent: int | None = None

    # -- SymbolLookup ---------------------------------------------------------------------------

    def __len__(self) -> int:
        count = self._store.get_meta("symbols")
        if count is None or not self._healthy():
            return len(self._table())
        return int(count)

    @property
    def kept_count(self) -> int:
        rows = self._rows(f"SELECT count(*) FROM symbol WHERE {_KEPT}")
        return self._checked(lambda t: t.kept_count, int(rows[0][0]) if rows else 0)

    def symbol(self, index: int) -> Symbol:
        rows = self._rows(f"SELECT {_COLUMNS} FROM symbol WHERE idx = ?", index)
        if not self._healthy():
            return self._table().symbol(index)
        if not rows:
            raise IndexError(f"symbol index {index} out of range")
        return _symbol(rows[0])

    def __iter__(self) -> Iterator[Symbol]:
        rows = self._rows(f"SELECT {_COLUMNS} FROM symbol WHERE flags & {FLAG_LISTED} ORDER BY idx")
        if self._healthy():
            return (_symbol(row) for row in rows)
        return iter(self._table())

    def by_name(self, name: str) -> list[Symbol]:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM symbol WHERE name = ? AND flags & {_BY_NAME} = {_BY_NAME}"
            " ORDER BY idx",
            name,
        )
        return self._checked(lambda t: t.by_name(name), [_symbol(row) for row in rows])

    def by_base_name(self, base: str) -> list[Symbol]:
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM symbol WHERE base_name = ?"
            f" AND flags & {_BY_NAME} = {_BY_NAME} ORDER BY idx",
            base,
        )
        # SymbolTable groups by name, names in the order of their first .symtab index.
        first_index: dict[str, int] = {}
        for row in rows:
            first_index.setdefault(row[1], row[0])
        rows.sort(key=lambda row: (first_index[row[1]], row[0]))
        return self._checked(lambda t: t.by_base_name(base), [_symbol(row) for row in rows])

    def names_with_base(self, base: str) -> list[str]:
        rows = self._rows(
            "SELECT DISTINCT name FROM symbol WHERE base_name = ?"
            f" AND flags & {_BY_NAME} = {_BY_NAME}",
            base,
        )
        return self._checked(lambda t: t.names_with_base(base), sorted(row[0] for row in rows))

    def lookup(self, link_address: int) -> Symbol | None:
        if not 0 <= link_address < _U64:
            return None
        # The kernel's rule (SymbolTable.lookup): the kept symbol with the highest start <=
        # address; among aliases a function first, then the lowest .symtab index.
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM symbol WHERE {_KEPT} AND link_address = ("
            f" SELECT link_address FROM symbol WHERE {_KEPT} AND link_address <= ?"
            " ORDER BY link_address DESC LIMIT 1)"
            f" ORDER BY (flags & {FLAG_FUNCTION}) = 0, idx LIMIT 1",
            link_address - _ADDRESS_BIAS,
        )
        found = _symbol(rows[0]) if rows else None
        if (
            found is not None
            and found.kallsyms_size is not None
            and link_address >= found.link_address + found.kallsyms_size
        ):
            found = None
        return self._checked(lambda t: t.lookup(link_address), found)

    def symbols_at(self, link_address: int) -> list[Symbol]:
        if not 0 <= link_address < _U64:
            return []
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM symbol WHERE {_KEPT} AND link_address = ? ORDER BY idx",
            link_address - _ADDRESS_BIAS,
        )
        return self._checked(lambda t: t.symbols_at(link_address), [_symbol(r) for r in rows])

    def function_containing(self, link_address: int) -> Symbol | None:
        if not 0 <= link_address < _U64:
            return None
        # SymbolTable.function_containing walks back over function starts <= address in
        # (address, index) order until one holds the address, giving up after the first start
        # more than the span below it. The same here, with the "holds" test inside SQLite:
        # first among the starts within the span, then the one start just below it.
        key = link_address - _ADDRESS_BIAS
        if self._function_extent is None:
            self._function_extent = int(self._store.get_meta("function_extent") or 1 << 64)
        # No function is longer than the longest: starts further below cannot hold the address.
        span = min(self._function_extent, _FUNCTION_SEARCH_SPAN)
        low = max(link_address - span, 0) - _ADDRESS_BIAS
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM symbol WHERE flags & {_FUNCTION} = {_FUNCTION}"
            " AND link_address BETWEEN ? AND ? AND max(elf_size, 1) > ? - link_address"
            " ORDER BY link_address DESC, idx DESC LIMIT 1",
            low,
            key,
            key,
        )
        if not rows and self._function_extent > _FUNCTION_SEARCH_SPAN:
            rows = [
                row
                for row in self._rows(
                    f"SELECT {_COLUMNS} FROM symbol WHERE flags & {_FUNCTION} = {_FUNCTION}"
                    " AND link_address < ? ORDER BY link_address DESC, idx DESC LIMIT 1",
                    low,
                )
                if key - row[2] < max(_unsigned(row[3]), 1)
            ]
        found = _symbol(rows[0]) if rows else None
        return self._checked(lambda t: t.function_containing(link_address), found)

    def address_of(self, name: str) -> int | None:
        rows = self._rows(
            f"SELECT link_address FROM symbol WHERE name = ? AND flags & {_BY_NAME} = {_BY_NAME}"
            " ORDER BY idx LIMIT 1",
            name,
        )
        found = int(rows[0][0]) + _ADDRESS_BIAS if rows else None
        return self._checked(lambda t: t.address_of(name), found)

    # -- the fallback -----------------------------------------------------------------------------

    def _rows(self, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
        if self._fallback is not None:
            return []
        return self._store.query(sql, parameters)

    def _healthy(self) -> bool:
        store = self._store
        return self._fallback is None and store.usable and store.discarded == self._generation

    def _checked(self, ask_table: Callable[[SymbolTable], T], answer: T) -> T:
        """``answer`` if the store gave it, else what the table loaded from the ELF says."""
        if self._healthy():
            return answer
        return ask_table(self._table())

    def _table(self) -> SymbolTable:
        if self._fallback is None:
            log.info("index of %s failed; loading symbols from the ELF", self.image.path)
            self._fallback = SymbolTable(self.image)
            if self._store.usable and not self._store.read_only:
                store_symbols(self._store, self._fallback)
        return self._fallback


def _signed(value: int) -> int:
    return value - _U64 if value >= _ADDRESS_BIAS else value


def _unsigned(value: int) -> int:
    return value + _U64 if value < 0 else value


def _symbol(row: tuple[Any, ...]) -> Symbol:
    index, name, link_address, elf_size, symbol_type, bind, section, nm_type, kallsyms = row
    return Symbol(
        name=name,
        link_address=link_address + _ADDRESS_BIAS,
        elf_size=_unsigned(elf_size),
        type=symbol_type,
        bind=bind,
        section=section,
        nm_type=nm_type,
        kallsyms_size=None if kallsyms is None else _unsigned(kallsyms),
        index=index,
    )
