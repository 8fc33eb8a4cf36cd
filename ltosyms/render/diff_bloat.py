"""The diff in ``scripts/bloat-o-meter`` layout, with ltosyms' matching underneath.

Same header line, columns and ``Total:`` line as bloat-o-meter (kernel 6.1), and its symbol
selections: all of ``tTdDbBrR`` by default, ``-c`` one table each for functions (``tT``), data
(``dDbB``) and read-only data (``rR``), ``-d`` data and read-only data, ``-t`` functions; so
scripts that read its output keep working. What differs is what a row is: bloat-o-meter keys
rows by the name with every ``\\.[0-9]+`` removed and adds up colliding sizes (three static
``name_show`` become one row, ``foo.llvm.123`` becomes ``foo.llvm`` and never meets ``foo``);
here a row is one matched function or object (see :mod:`ltosyms.diff.match`), printed under
its NEW name. Rows that would print the same name (same-named statics) carry their source
file as a fifth column; a collection of objects (clang's promoted string literals) prints as
its pattern and count, ``.str.*[341]``. Weak symbols (``W``, ``V``), which bloat-o-meter leaves
out, count under the kind of their section.
"""

from __future__ import annotations

import enum
import operator
from collections import Counter
from collections.abc import Iterator

from ltosyms.diff.model import Change, DiffReport, SectionClass, SymbolKind

# scripts/bloat-o-meter getsizes(): "strip generated symbols" (names whose size depends on
# the build, not the code).
_SKIPPED_PREFIXES = ("__mod_", "__se_sys", "__se_compat_sys", "__addressable_")
_SKIPPED_NAMES = frozenset({"linux_banner", "vermagic"})


class Selection(enum.Enum):
    """bloat-o-meter's mutually exclusive ``-c``, ``-d``, ``-t`` (none: everything)."""

    ALL = "all"
    CATEGORIES = "c"
    DATA = "d"
    TEXT = "t"


# (table title, nm type letters) per selection, as scripts/bloat-o-meter 6.1 prints them.
_TABLES = {
    Selection.ALL: (("Function", "tTdDbBrR"),),
    Selection.CATEGORIES: (("Function", "tT"), ("Data", "dDbB"), ("RO Data", "rR")),
    Selection.DATA: (("Data", "dDbBrR"),),
    Selection.TEXT: (("Function", "tT"),),
}


def _skipped(change: Change) -> bool:
    name = change.name
    return name.startswith(_SKIPPED_PREFIXES) or name in _SKIPPED_NAMES


def nm_letter(change: Change) -> str:
    """The nm type letter a row counts as (NEW's symbol when NEW has one); weak and other
    letters by the kind of symbol and its section."""
    group = change.new or change.base
    assert group is not None
    letter = group.nm_type
    if letter in "tTdDbBrR":
        return letter
    if group.kind is SymbolKind.FUNCTION:
        return "t"
    return {SectionClass.RODATA: "r", SectionClass.BSS: "b"}.get(group.section_class, "d")


def _row_name(change: Change) -> str:
    group = change.new or change.base
    assert group is not None
    if group.is_collection:
        return f"{group.pattern}[{len(group.names)}]"
    return group.main_name


def render_bloat(report: DiffReport, selection: Selection = Selection.ALL) -> Iterator[str]:
    for title, letters in _TABLES[selection]:
        yield from _table(report, title, letters)


def _table(report: DiffReport, title: str, letters: str) -> Iterator[str]:
    # One pass over the changes for the totals and the rows, each change's sizes, delta and
    # name worked out once (a table of a gcc LTO diff prints 11,000 rows of 24,000 changes).
    grow = shrink = add = remove = up = down = 0
    old_total = new_total = 0
    rows: list[tuple[int, str, Change]] = []  # (delta, name) of each row printed
    for change in report.changes:
        if _skipped(change) or nm_letter(change) not in letters:
            continue
        base, new = change.base, change.new
        base_size = base.size if base is not None else 0
        new_size = new.size if new is not None else 0
        delta = new_size - base_size
        old_total += base_size
        new_total += new_size
        if base is None:
            add += 1
            up += new_size
        elif new is None:
            remove += 1
            down += base_size
        elif delta > 0:
            grow += 1
            up += delta
        elif delta < 0:
            shrink += 1
            down -= delta
        if delta:
            rows.append((delta, _row_name(change), change))
    yield (
        f"add/remove: {add}/{remove} grow/shrink: {grow}/{shrink} "
        f"up/down: {up}/{-down} ({up - down})"
    )
    yield f"{title:<40} {'old':>7} {'new':>7} {'delta':>7}"
    repeated = Counter(name for _delta, name, _change in rows)
    # bloat-o-meter sorts (delta, name) descending; equal keys keep the report's order.
    rows.sort(key=_delta_and_name, reverse=True)
    for delta, name, change in rows:
        base, new = change.base, change.new
        old = str(base.size) if base is not None else "-"
        new_text = str(new.size) if new is not None else "-"
        line = f"{name:<40} {old:>7} {new_text:>7} {delta:>+7d}"
        if repeated[name] > 1:
            # What tells the rows apart: the file, else the raw name of the group's first symbol.
            line += f" {change.source or change.name}"
        yield line
    percent = (new_total - old_total) * 100.0 / old_total if old_total else 0
    yield f"Total: Before={old_total}, After={new_total}, chg {percent:+.2f}%"


_delta_and_name = operator.itemgetter(0, 1)
