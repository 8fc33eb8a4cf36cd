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
"""

from __future__ import annotations

from bisect import bisect_right

from ltosyms.elf.symtab import SymbolTable

# nm letters of symbols defined in executable sections (bfd decode_section_type: 't'), weak
# definitions ('W', 'w') and GNU indirect functions ('i'): the symbols that can name code.
_CODE_LETTERS = frozenset("tTWwi")


class OuterNames:
    """llvm-symbolizer's symbol-table name for a code address, built once per table."""

    def __init__(self, symbols: SymbolTable) -> None:
        names = symbols.names
        addresses = symbols.link_addresses
        sizes = symbols.elf_sizes
        letters = symbols.nm_types
        candidates = [
            index
            for index, letter in enumerate(letters)
            if letter in _CODE_LETTERS
            and symbols.is_listed(index)
            and symbols.is_defined(index)
            and not symbols.is_absolute(index)
            and not names[index].startswith(("$", ".L"))
        ]
        # Sort by (address, size, name); per address keep the last: the largest size, then the
        # greatest name (llvm SymbolizableObjectFile::create).
        candidates.sort(key=lambda i: (addresses[i], sizes[i], names[i]))
        starts: list[int] = []
        kept: list[int] = []
        for index in candidates:
            if starts and starts[-1] == addresses[index]:
                kept[-1] = index
            else:
                starts.append(addresses[index])
                kept.append(index)
        self._starts = starts
        self._ends = [addresses[i] + sizes[i] if sizes[i] else 0 for i in kept]
        self._names = [names[i] for i in kept]

    def name_at(self, link_address: int, within_size: bool = True) -> str | None:
        """The symbol name at ``link_address``; with ``within_size`` False, the nearest symbol
        at or below the address even past its ELF size (addr2line and kallsyms do that too,
        for addresses in the padding after a function, where DWARF has no function)."""
        position = bisect_right(self._starts, link_address) - 1
        if position < 0:
            return None
        end = self._ends[position]
        if within_size and end and link_address >= end:
            return None
        return self._names[position]
