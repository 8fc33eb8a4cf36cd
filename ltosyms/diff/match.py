"""Pair the groups of two builds by identity, not by text.

``scripts/bloat-o-meter`` strips ``\\.[0-9]+`` from names and adds up what collides: the three
static ``name_show`` of three drivers become one entry, ``foo.llvm.123`` becomes ``foo.llvm``
and never meets ``foo``. Here a group's identity is its base name (suffix grammar) plus where
it comes from, and the passes go from the strongest evidence to the weakest:

1. same kind, base name and DWARF compilation unit;
2. same kind, base name and file base name (``STT_FILE`` symbol or the unit's base name),
   when that pair is unique in both builds;
3. same kind and base name, unique among what is left in both builds;
4. a raw name (aliases included: ``memmove``/``__memmove``) held by one group left in each build;
5. what is left of one base name, paired in address order (the link order of object files
   survives LTO for the most part); the surplus is dropped or new.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Callable, Hashable

from ltosyms.diff.model import SymbolGroup, SymbolKind

Pair = tuple[SymbolGroup | None, SymbolGroup | None]


def match_groups(base: list[SymbolGroup], new: list[SymbolGroup]) -> list[Pair]:
    """Every group of both lists exactly once: matched pairs, BASE-only, NEW-only."""
    base_left = dict(enumerate(base))
    new_left = dict(enumerate(new))
    pairs: list[Pair] = []

    def unique_pass(key: Callable[[SymbolGroup], Hashable | None]) -> None:
        base_keys = _unique_keys(base_left, key)
        new_keys = _unique_keys(new_left, key)
        for value, base_position in base_keys.items():
            new_position = new_keys.get(value)
            if new_position is not None:
                pairs.append((base_left.pop(base_position), new_left.pop(new_position)))

    # Keys hold `is_function` rather than the kind enum: enum hashing is slow at this scale.
    unique_pass(lambda g: (_is_function(g), g.base_name, g.unit) if g.unit else None)
    unique_pass(lambda g: (_is_function(g), g.base_name, _file_key(g)) if _file_key(g) else None)
    unique_pass(lambda g: (_is_function(g), g.base_name))
    _alias_pass(base_left, new_left, pairs)
    # Pass 4: leftovers sharing a base name, in address order.
    base_by_name: dict[Hashable, list[int]] = defaultdict(list)
    for position, group in base_left.items():
        base_by_name[(_is_function(group), group.base_name)].append(position)
    new_by_name: dict[Hashable, list[int]] = defaultdict(list)
    for position, group in new_left.items():
        new_by_name[(_is_function(group), group.base_name)].append(position)
    for name_key, base_positions in base_by_name.items():
        new_positions = new_by_name.get(name_key, [])
        base_positions.sort(key=lambda p: base_left[p].link_address)
        new_positions.sort(key=lambda p: new_left[p].link_address)
        for base_position, new_position in zip(base_positions, new_positions, strict=False):
            pairs.append((base_left.pop(base_position), new_left.pop(new_position)))
    pairs.extend((group, None) for group in base_left.values())
    pairs.extend((None, group) for group in new_left.values())
    return pairs


def _alias_pass(
    base_left: dict[int, SymbolGroup], new_left: dict[int, SymbolGroup], pairs: list[Pair]
) -> None:
    def holders(groups: dict[int, SymbolGroup]) -> dict[tuple[object, str], set[int]]:
        table: dict[tuple[object, str], set[int]] = defaultdict(set)
        for position, group in groups.items():
            for name in group.names:
                table[(_is_function(group), name)].add(position)
        return table

    base_holders = holders(base_left)
    new_holders = holders(new_left)
    for name_key, base_positions in base_holders.items():
        new_positions = new_holders.get(name_key)
        if not new_positions or len(base_positions) != 1 or len(new_positions) != 1:
            continue
        (base_position,) = base_positions
        (new_position,) = new_positions
        if base_position in base_left and new_position in new_left:
            pairs.append((base_left.pop(base_position), new_left.pop(new_position)))


def _is_function(group: SymbolGroup) -> bool:
    return group.kind is SymbolKind.FUNCTION


def _file_key(group: SymbolGroup) -> str | None:
    if group.file_symbol:
        return group.file_symbol
    if group.unit:
        return posixpath.basename(group.unit)
    return None


def _unique_keys(
    groups: dict[int, SymbolGroup], key: Callable[[SymbolGroup], Hashable | None]
) -> dict[Hashable, int]:
    seen: dict[Hashable, int] = {}
    repeated: set[Hashable] = set()
    for position, group in groups.items():
        value = key(group)
        if value is None:
            continue
        if value in seen:
            repeated.add(value)
        else:
            seen[value] = position
    return {value: position for value, position in seen.items() if value not in repeated}
