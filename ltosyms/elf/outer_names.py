"""The name llvm-symbolizer gives the outermost entry of an inline chain: the ELF symbol.

llvm-symbolizer (and, when the symbol starts at the DWARF function, addr2line) names the
outermost frame from the symbol table, not from DWARF (llvm SymbolizableObjectFile::
symbolizeInlinedCode -> getNameFromSymbolTable, LLVM 14). That is the name a user sees in the
oops too: ``sched_show_task.cold``, ``finish_task_switch.isra.0``,
``try_to_wake_up.llvm.14717294184349261171``, and assembly functions such as
``ret_from_fork`` that have no DWARF function at all.

The rule, as LLVM 14 implements it: among symbols of type NOTYPE, FUNC, OBJECT or IFUNC that
are defined in a section, keep one per address (the largest size; ties: the greatest name),
take the last one at or below the address, and use it unless it has a size and the address is
past its end.

The DWARF resolver takes the rule as a plain function (:func:`outer_namer`): it knows nothing
of symbol tables.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence

from ltosyms.elf.symtab import SymbolTable
from ltosyms.stores import Memo, remembered

# nm letters of symbols defined in executable sections (bfd decode_section_type: 't'), weak
# definitions ('W', 'w') and GNU indirect functions ('i'): the symbols that can name code.
_CODE_LETTERS = frozenset("tTWwi")


class OuterNames:
    """llvm-symbolizer's symbol for a code address, chosen once per table.

    Kept as the start, end and symbol-table position of each chosen symbol, three columns
    (what the index stores); the names come from the table itself."""

    def __init__(self, starts: Sequence[int], ends: Sequence[int], indexes: Sequence[int]) -> None:
        """:class:`ValueError` unless the columns have one entry per chosen symbol each."""
        if not len(starts) == len(ends) == len(indexes):
            raise ValueError("outer name columns differ in length")
        self.starts = starts
        self.ends = ends  # 0: no size (the symbol extends to the next one)
        self.indexes = indexes  # positions in the symbol table

    @classmethod
    def from_symbols(cls, symbols: SymbolTable) -> OuterNames:
        names = symbols.names
        addresses = symbols.link_addresses
        sizes = symbols.elf_sizes
        code = _CODE_LETTERS
        # The nm letter already excludes undefined and absolute symbols (and so file
        # symbols); section symbols have no name.
        candidates = [
            index
            for index, (letter, name) in enumerate(zip(symbols.nm_types, names, strict=True))
            if letter in code and name and name[0] != "$" and not name.startswith(".L")
        ]
        candidates.sort(key=addresses.__getitem__)
        # Per address keep the largest size, then the greatest name (llvm sorts by (address,
        # size, name) and keeps the last of each address: SymbolizableObjectFile::create).
        starts: list[int] = []
        kept: list[int] = []
        for index in candidates:
            address = addresses[index]
            if starts and starts[-1] == address:
                best = kept[-1]
                if (sizes[index], names[index]) > (sizes[best], names[best]):
                    kept[-1] = index
            else:
                starts.append(address)
                kept.append(index)
        ends = [addresses[i] + sizes[i] if sizes[i] else 0 for i in kept]
        return cls(starts, ends, kept)

    def index_at(self, link_address: int, within_size: bool = True) -> int | None:
        """The symbol-table position of the symbol at ``link_address``; with
        ``within_size`` False, the nearest symbol at or below the address even past its ELF
        size (addr2line and kallsyms do that too, for addresses in the padding after a
        function, where DWARF has no function)."""
        position = bisect_right(self.starts, link_address) - 1
        if position < 0:
            return None
        end = self.ends[position]
        if within_size and end and link_address >= end:
            return None
        return self.indexes[position]


def outer_namer(
    symbols: SymbolTable, memo: Memo[None, OuterNames] | None = None
) -> Callable[[int, bool], str | None]:
    """The symbol name llvm-symbolizer gives the outermost entry at an address, from
    ``symbols``; the choice of symbols is made on the first call (or taken from ``memo``). A
    decode answered from stored chains never calls it."""
    made: list[OuterNames] = []
    names = symbols.names

    def name_at(link_address: int, within_size: bool = True) -> str | None:
        if not made:
            made.append(remembered(memo, None, lambda: OuterNames.from_symbols(symbols)))
        index = made[0].index_at(link_address, within_size)
        # A stored position past the table is no name (only a hostile index has one).
        return names[index] if index is not None and index < len(names) else None

    return name_at
