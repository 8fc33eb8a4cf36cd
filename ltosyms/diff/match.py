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
   survives LTO for the most part); the surplus is dropped or new;
6. a raw name of a group left in one build that names a symbol of size 0 in the other (clang
   ThinLTO's empty lockdep keys ``alloc_tty_struct.__key``): the object is still there, empty.

Passes 2 to 5 never pair two static (local) groups of different compilation units: those are
different functions, e.g. the out-of-line copies of the header inline ``put_page`` that
``init/do_mounts.c`` and ``kernel/futex/core.c`` each have. A global name stands for one
definition in the whole kernel, so a global may change units (DWARF of an internalized
variable, a function moved between kernel versions).

What is still left may be a *folded* name (:func:`folded_partners`): gcc's identical code
folding (``-fipa-icf``) keeps one body for ``ct_kernel_enter_state`` and
``ct_kernel_exit_state`` and makes the second name an alias of the first.
"""

from __future__ import annotations

import posixpath
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence

from ltosyms.diff.model import EmptyGroups, SymbolGroup, SymbolKind
from ltosyms.names.suffixes import SuffixKind, parse_name

Pair = tuple[SymbolGroup | None, SymbolGroup | None]
_PROMOTIONS = tuple(kind for kind in SuffixKind if kind.is_promotion)
_FUNCTION = SymbolKind.FUNCTION


def match_groups(
    base: Sequence[SymbolGroup],
    new: Sequence[SymbolGroup],
    base_empty: Sequence[SymbolGroup] = (),
    new_empty: Sequence[SymbolGroup] = (),
) -> list[Pair]:
    """Every group of ``base`` and ``new`` exactly once: matched pairs, BASE-only, NEW-only.
    A group of size 0 (``*_empty``) appears only when it is paired with a sized one."""
    base_left = dict(enumerate(base))
    new_left = dict(enumerate(new))
    pairs: list[Pair] = []

    def unique_pass(keys: Callable[[dict[int, SymbolGroup]], dict[int, Hashable]]) -> None:
        base_keys = _unique_keys(keys(base_left))
        new_keys = _unique_keys(keys(new_left))
        for value, base_position in base_keys.items():
            new_position = new_keys.get(value)
            if new_position is not None and may_pair(
                base_left[base_position], new_left[new_position]
            ):
                pairs.append((base_left.pop(base_position), new_left.pop(new_position)))

    # Each pass keys what is left in one comprehension (no call per group), and the keys hold
    # `is_function` rather than the kind enum: enum hashing is slow at this scale.
    unique_pass(
        lambda left: {
            position: (group.kind is _FUNCTION, group.base_name, group.unit)
            for position, group in left.items()
            if group.unit
        }
    )
    unique_pass(
        lambda left: {
            position: (group.kind is _FUNCTION, group.base_name, file_key)
            for position, group in left.items()
            if (file_key := _file_key(group))
        }
    )
    unique_pass(
        lambda left: {
            position: (group.kind is _FUNCTION, group.base_name) for position, group in left.items()
        }
    )
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
        for base_position in base_positions:
            base_group = base_left[base_position]
            for new_position in new_positions:
                if new_position in new_left and may_pair(base_group, new_left[new_position]):
                    pairs.append((base_left.pop(base_position), new_left.pop(new_position)))
                    break
    # Pass 6: still there, with size 0.
    _empty_pass(base_left, _empty_groups(new_empty), pairs, base_side=True)
    _empty_pass(new_left, _empty_groups(base_empty), pairs, base_side=False)
    pairs.extend((group, None) for group in base_left.values())
    pairs.extend((None, group) for group in new_left.values())
    return pairs


def may_pair(base: SymbolGroup, new: SymbolGroup) -> bool:
    """False for two local groups of different compilation units (see the module docstring)."""
    if base.unit and new.unit and base.unit != new.unit:
        return base.is_global or new.is_global
    return True


def _empty_groups(groups: Sequence[SymbolGroup]) -> EmptyGroups:
    return groups if isinstance(groups, EmptyGroups) else EmptyGroups.of(groups)


def _empty_pass(
    left: dict[int, SymbolGroup],
    empty: EmptyGroups,
    pairs: list[Pair],
    *,
    base_side: bool,
) -> None:
    """Pair groups left on one side with the other side's size-0 groups holding one of their
    names, each size-0 group at most once, in address order (the header inline's static
    ``init_completion.__key`` is there once per unit that uses it)."""
    # Only names that can be asked for: an empty group's name and its unpromoted form start
    # with the same text before the first dot, and few groups are left (thousands are empty).
    wanted = {name.partition(".")[0] for group in left.values() for name in group.names}
    if not wanted:
        return
    positions = []
    for position, names in enumerate(empty.names):
        for name in names:
            if name.partition(".")[0] in wanted:
                positions.append(position)
                break
    empty.take(positions)
    candidates = [(position, empty[position]) for position in positions]
    holders: dict[tuple[bool, str], list[int]] = defaultdict(list)
    for position, group in sorted(candidates, key=lambda item: item[1].link_address):
        for name in group.names:
            holders[(_is_function(group), _unpromoted(name))].append(position)
    taken: set[int] = set()
    for position, group in sorted(left.items(), key=lambda item: item[1].link_address):
        other = _first_free_holder(group, holders, taken, empty)
        if other is not None:
            taken.add(other)
            del left[position]
            pairs.append((group, empty[other]) if base_side else (empty[other], group))


def _first_free_holder(
    group: SymbolGroup,
    holders: dict[tuple[bool, str], list[int]],
    taken: set[int],
    empty: EmptyGroups,
) -> int | None:
    """The first size-0 group not taken yet that holds one of ``group``'s names and may pair
    with it (loops, not a generator: this runs for each of thousands of groups left)."""
    is_function = _is_function(group)
    for name in group.names:
        for found in holders.get((is_function, _unpromoted(name)), ()):
            if found not in taken and may_pair(group, empty[found]):
                return found
    return None


def folded_partners(
    unpaired: Sequence[SymbolGroup], other_build: Sequence[SymbolGroup]
) -> dict[int, str]:
    """For groups one build has and the other has not: the other build's group that holds
    the group's main name as an alias (identical code folding), by ``id`` of the unpaired
    group -> main name of the group it is folded with."""
    alias_of: dict[tuple[bool, str], list[SymbolGroup]] = defaultdict(list)
    for group in other_build:
        for name in group.alias_names:
            alias_of[(_is_function(group), name)].append(group)
    partners: dict[int, str] = {}
    for group in unpaired:
        holders = alias_of.get((_is_function(group), group.main_name), [])
        if len(holders) == 1 and holders[0].main_name != group.main_name:
            partners[id(group)] = holders[0].main_name
    return partners


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
        if (
            base_position in base_left
            and new_position in new_left
            and may_pair(base_left[base_position], new_left[new_position])
        ):
            pairs.append((base_left.pop(base_position), new_left.pop(new_position)))


def _unpromoted(name: str) -> str:
    """The name without promotion suffixes: ThinLTO renames ``mmap_init.__key`` to
    ``mmap_init.__key.llvm.<hash>`` as it empties it."""
    if name.find(".", 1) < 0:  # no suffix (parse_name's rule)
        return name
    parsed = parse_name(name)
    return parsed.without(*_PROMOTIONS) if parsed.suffixes else name


def _is_function(group: SymbolGroup) -> bool:
    return group.kind is SymbolKind.FUNCTION


def _file_key(group: SymbolGroup) -> str | None:
    if group.file_symbol:
        return group.file_symbol
    if group.unit:
        return posixpath.basename(group.unit)
    return None


def _unique_keys(keys: dict[int, Hashable]) -> dict[Hashable, int]:
    """Key -> position for the keys only one position has, in the order of the positions."""
    counts = Counter(keys.values())
    return {value: position for position, value in keys.items() if counts[value] == 1}
