"""The diff in ``scripts/bloat-o-meter`` layout, with ltosyms' matching underneath.

Same header line, columns and ``Total:`` line as bloat-o-meter (kernel 6.1), so scripts that
read its output keep working. What differs is what a row is: bloat-o-meter keys rows by the
name with every ``\\.[0-9]+`` removed and adds up colliding sizes (three static ``name_show``
become one row, ``foo.llvm.123`` becomes ``foo.llvm`` and never meets ``foo``); here a row is
one matched function or object (see :mod:`ltosyms.diff.match`), printed under its NEW name.
"""

from __future__ import annotations

from collections.abc import Iterator

from ltosyms.diff.model import Change, DiffReport

# scripts/bloat-o-meter getsizes(): "strip generated symbols" (names whose size depends on
# the build, not the code).
_SKIPPED_PREFIXES = ("__mod_", "__se_sys", "__se_compat_sys", "__addressable_")
_SKIPPED_NAMES = frozenset({"linux_banner", "vermagic"})


def _skipped(change: Change) -> bool:
    name = change.name
    return name.startswith(_SKIPPED_PREFIXES) or name in _SKIPPED_NAMES


def _row_name(change: Change) -> str:
    group = change.new or change.base
    assert group is not None
    return group.main_name


def render_bloat(report: DiffReport) -> Iterator[str]:
    changes = [change for change in report.changes if not _skipped(change)]
    grow = shrink = add = remove = up = down = 0
    old_total = new_total = 0
    for change in changes:
        old_total += change.base_size
        new_total += change.new_size
        if change.base is None:
            add += 1
            up += change.new_size
        elif change.new is None:
            remove += 1
            down += change.base_size
        elif change.delta > 0:
            grow += 1
            up += change.delta
        elif change.delta < 0:
            shrink += 1
            down -= change.delta
    yield (
        f"add/remove: {add}/{remove} grow/shrink: {grow}/{shrink} "
        f"up/down: {up}/{-down} ({up - down})"
    )
    yield f"{'Function':<40} {'old':>7} {'new':>7} {'delta':>7}"
    # bloat-o-meter sorts (delta, name) descending.
    for change in sorted(changes, key=lambda c: (c.delta, _row_name(c)), reverse=True):
        if not change.delta:
            continue
        old = str(change.base_size) if change.base is not None else "-"
        new = str(change.new_size) if change.new is not None else "-"
        yield f"{_row_name(change):<40} {old:>7} {new:>7} {change.delta:>+7d}"
    percent = (new_total - old_total) * 100.0 / old_total if old_total else 0
    yield f"Total: Before={old_total}, After={new_total}, chg {percent:+.2f}%"
