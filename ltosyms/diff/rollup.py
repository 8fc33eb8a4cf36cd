"""Bytes of the changes added up per directory (at one depth, or at every depth) and per
MAINTAINERS subsystem. A change belongs to the file of its DWARF compilation unit."""

from __future__ import annotations

import functools
import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ltosyms.diff.model import Change, DirectoryTotals, SymbolKind, group_unit

if TYPE_CHECKING:
    from ltosyms.diff.maintainers import Maintainers

UNKNOWN_DIRECTORY = "(no DWARF unit)"
UNMAINTAINED = "(no MAINTAINERS section)"


@functools.cache  # a few thousand units, each asked about once per change it holds
def directory_of(unit: str | None, depth: int | None) -> str:
    """The directory of a unit cut to ``depth`` components (None: the whole directory)."""
    if not unit:
        return UNKNOWN_DIRECTORY
    directory = posixpath.dirname(unit)
    if not directory:
        return "."
    return directory if depth is None else "/".join(directory.split("/")[:depth])


# Bytes and function counts of one unit: BASE bytes, NEW bytes, BASE and NEW functions.
UnitSums = dict[str | None, list[int]]


def unit_sums(changes: Iterable[Change]) -> UnitSums:
    """The running sums of the changes per DWARF unit (BASE's unit, else NEW's): every rollup
    adds these up, one pass over the changes for all of them."""
    sums: UnitSums = {}
    function = SymbolKind.FUNCTION
    for change in changes:
        base, new = change.base, change.new
        unit = group_unit(base, new)
        entry = sums.get(unit)
        if entry is None:
            entry = sums[unit] = [0, 0, 0, 0]
        is_function = change.kind is function
        if base is not None:
            entry[0] += base.size
            entry[2] += is_function
        if new is not None:
            entry[1] += new.size
            entry[3] += is_function
    return sums


def rollups(
    changes: Iterable[Change], depth: int, maintainers: Maintainers | None
) -> tuple[list[DirectoryTotals], list[DirectoryTotals], list[DirectoryTotals]]:
    """(directory totals at ``depth``, the directory tree, the MAINTAINERS subsystems or none)."""
    sums = unit_sums(changes)
    return (
        _directories_at(sums, depth),
        _tree(sums),
        _subsystems(sums, maintainers) if maintainers is not None else [],
    )


def directory_totals(changes: Iterable[Change], depth: int) -> list[DirectoryTotals]:
    """Per directory at ``depth`` (the one the changes were made with, ``Change.directory``)."""
    return _directories_at(unit_sums(changes), depth)


def directory_tree(changes: Iterable[Change]) -> list[DirectoryTotals]:
    """The rollup at every depth from 1 to the deepest directory: at depth 2 ``drivers/tty``
    holds everything below it and ``mm`` the files of ``mm/`` itself, as ``--depth 2`` shows."""
    return _tree(unit_sums(changes))


def subsystem_totals(changes: Iterable[Change], maintainers: Maintainers) -> list[DirectoryTotals]:
    """Per MAINTAINERS section (the most specific one for the change's file)."""
    return _subsystems(unit_sums(changes), maintainers)


def _directories_at(sums: UnitSums, depth: int) -> list[DirectoryTotals]:
    return _totals(sums, lambda unit: directory_of(unit, depth) or UNKNOWN_DIRECTORY, depth)


def _tree(sums: UnitSums) -> list[DirectoryTotals]:
    """Units are added up per directory first, then each directory into its prefixes."""
    per_directory = _summed(sums, lambda unit: directory_of(unit, None))
    # A marker (no unit, the top directory) is its own directory at every depth.
    parts = {
        name: [name] if name in (UNKNOWN_DIRECTORY, ".") else name.split("/")
        for name in per_directory
    }
    deepest = max((len(components) for components in parts.values()), default=1)
    sizes: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for name, row in per_directory.items():
        for depth in range(1, deepest + 1):
            entry = sizes[(depth, "/".join(parts[name][:depth]))]
            for position in range(4):
                entry[position] += row[position]
    rows = [_row(key, values, depth) for (depth, key), values in sizes.items()]
    rows.sort(key=lambda row: (row.depth, row.directory))
    return rows


def _subsystems(sums: UnitSums, maintainers: Maintainers) -> list[DirectoryTotals]:
    def subsystem(unit: str | None) -> str:
        if not unit:
            return UNKNOWN_DIRECTORY
        return maintainers.subsystem_of(unit) or UNMAINTAINED

    return _totals(sums, subsystem)


def _summed(sums: UnitSums, key: Callable[[str | None], str]) -> dict[str, list[int]]:
    rolled: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for unit, values in sums.items():
        entry = rolled[key(unit)]
        for position in range(4):
            entry[position] += values[position]
    return rolled


def _totals(
    sums: UnitSums, key: Callable[[str | None], str], depth: int = 0
) -> list[DirectoryTotals]:
    rows = [_row(name, values, depth) for name, values in _summed(sums, key).items()]
    rows.sort(key=lambda row: (-abs(row.delta), -row.base_size, row.directory))
    return rows


def _row(directory: str, sums: list[int], depth: int) -> DirectoryTotals:
    """A rollup row from its running sums: base bytes, new bytes, base and new functions."""
    base_size, new_size, functions_base, functions_new = sums
    return DirectoryTotals(
        directory=directory,
        base_size=base_size,
        new_size=new_size,
        functions_base=functions_base,
        functions_new=functions_new,
        depth=depth,
    )
