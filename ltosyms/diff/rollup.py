"""Bytes of the changes added up per directory (at one depth, or at every depth) and per
MAINTAINERS subsystem. A change belongs to the file of its DWARF compilation unit."""

from __future__ import annotations

import functools
import posixpath
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from ltosyms.diff.maintainers import Maintainers
from ltosyms.diff.model import Change, DirectoryTotals, SymbolKind

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


def _unit(change: Change) -> str | None:
    return (change.base.unit if change.base else None) or (change.new.unit if change.new else None)


def directory_totals(changes: Iterable[Change], depth: int) -> list[DirectoryTotals]:
    """Per directory at the depth the changes were made with (``Change.directory``)."""
    return _totals(changes, lambda change: [change.directory or UNKNOWN_DIRECTORY], depth)


def directory_tree(changes: Sequence[Change]) -> list[DirectoryTotals]:
    """The rollup at every depth from 1 to the deepest directory: at depth 2 ``drivers/tty``
    holds everything below it and ``mm`` the files of ``mm/`` itself, as ``--depth 2`` shows.
    Changes are added up per directory first, then each directory into its prefixes."""
    per_directory = {row.directory: row for row in _totals(changes, _whole_directory)}
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
            entry[0] += row.base_size
            entry[1] += row.new_size
            entry[2] += row.functions_base
            entry[3] += row.functions_new
    rows = [_row(key, values, depth) for (depth, key), values in sizes.items()]
    rows.sort(key=lambda row: (row.depth, row.directory))
    return rows


def _whole_directory(change: Change) -> list[str]:
    return [directory_of(_unit(change), None)]


def subsystem_totals(changes: Iterable[Change], maintainers: Maintainers) -> list[DirectoryTotals]:
    """Per MAINTAINERS section (the most specific one for the change's file)."""

    def subsystem(change: Change) -> list[str]:
        unit = _unit(change)
        if not unit:
            return [UNKNOWN_DIRECTORY]
        return [maintainers.subsystem_of(unit) or UNMAINTAINED]

    return _totals(changes, subsystem)


def _totals(
    changes: Iterable[Change], keys: Callable[[Change], list[str]], depth: int = 0
) -> list[DirectoryTotals]:
    sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for change in changes:
        base, new = change.base, change.new
        is_function = change.kind is SymbolKind.FUNCTION
        for key in keys(change):
            entry = sizes[key]
            if base is not None:
                entry[0] += base.size
                entry[2] += is_function
            if new is not None:
                entry[1] += new.size
                entry[3] += is_function
    rows = [_row(key, values, depth) for key, values in sizes.items()]
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
