"""Render a :class:`KallsymsCheck` as the human report: lines of text, nothing else."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

from ltosyms.kallsyms_check import (
    AmbiguousName,
    DumpCheck,
    FailCondition,
    KallsymsCheck,
    NameAnalysis,
    RuleSummary,
)

T = TypeVar("T")

# Columns of the side-by-side table: header, RuleSummary attribute.
_COLUMNS = (
    ("kept", "kept_count"),
    ("renamed", "renamed"),
    ("ambiguous", "ambiguous"),
    ("symbols", "ambiguous_symbols"),
    ("amb-fn", "ambiguous_text"),
    ("by-rule", "made_by_cleanup"),
    ("size-sep", "size_separated"),
    ("unresolv", "unresolvable"),
    ("unres-fn", "unresolvable_text"),
    ("lossy", "lossy"),
    ("merged", "merged"),
)


def _limited(items: Sequence[T], limit: int) -> tuple[Sequence[T], int]:
    """The items to show and how many were left out (``limit`` 0 shows all)."""
    if limit <= 0 or len(items) <= limit:
        return items, 0
    return items[:limit], len(items) - limit


def check_text(
    check: KallsymsCheck, limit: int = 20, fail_on: Iterable[FailCondition] = ()
) -> Iterator[str]:
    yield from _header(check)
    yield ""
    yield from _table(check.rules, check.choice.rule.name)
    yield ""
    yield from _ambiguous(check.selected, limit)
    yield ""
    yield from _lossy(check.selected, check.rules, limit)
    if check.dump is not None:
        yield ""
        yield from _dump(check.dump, limit)
    requested = list(dict.fromkeys(fail_on))
    if requested:
        yield ""
        held = [c.value for c in requested if check.holds(c)]
        asked = ", ".join(c.value for c in requested)
        yield f"fail-on {asked}: " + (f"FAILED ({', '.join(held)})" if held else "passed")


def _header(check: KallsymsCheck) -> Iterator[str]:
    build = check.build
    yield f"vmlinux {check.path}"
    yield f"  build id {check.build_id or '-'}, {check.machine}"
    version = ".".join(map(str, build.version)) if build.version else "unknown"
    lto = "clang LTO" if build.clang_lto else "no clang LTO"
    compiler = build.compiler or "unknown compiler"
    yield f"  kernel {version}, {compiler}, {lto} ({'; '.join(build.evidence)})"
    rule = check.choice.rule
    how = "auto" if check.choice.automatic else "--rule"
    yield f"  cleanup rule {rule.name} ({how}: {check.choice.reason})"
    yield f"    {rule.origin}"
    stored = "-" if check.stored_count is None else str(check.stored_count)
    kallsyms_all = "y" if check.all_symbols else "n"
    yield (
        f"  kallsyms keeps {check.kept_count} symbols "
        f"(CONFIG_KALLSYMS_ALL={kallsyms_all}, kallsyms_num_syms {stored})"
    )


def _table(rules: Sequence[RuleSummary], selected: str) -> Iterator[str]:
    yield "every cleanup rule on this vmlinux (* the rule reported below):"
    width = max(len(s.rule.name) for s in rules) + 2
    yield "  " + "rule".ljust(width) + " ".join(f"{h:>9}" for h, _ in _COLUMNS)
    for summary in rules:
        mark = "*" if summary.rule.name == selected else " "
        values = " ".join(f"{getattr(summary, attribute):>9}" for _, attribute in _COLUMNS)
        yield f"{mark} {summary.rule.name.ljust(width)}{values}"
    yield from _LEGEND


_LEGEND = (
    "  renamed: printed other than the ELF name; ambiguous: printed names standing for 2+",
    "  addresses (symbols: the kept symbols behind them; amb-fn: names of a function);",
    "  by-rule: made or widened by the rule; size-sep/unresolv: the printed /0xSIZE does/does",
    "  not tell them apart; lossy: .cold/.part/.constprop/.isra cut off (merged: into a name",
    "  another symbol prints as)",
)


def _ambiguous(analysis: NameAnalysis, limit: int) -> Iterator[str]:
    summary = analysis.summary
    rule = summary.rule.name
    yield (
        f"ambiguous printed names under {rule}: {summary.ambiguous} "
        f"({summary.ambiguous_text} name a function; {summary.made_by_cleanup} made or widened "
        f"by the rule; {summary.unresolvable} unresolvable by size, "
        f"{summary.unresolvable_text} of them functions)"
    )
    shown, left_out = _limited(analysis.ambiguous, limit)
    if shown:
        yield from _GROUP_LEGEND
    for group in shown:
        yield from _group(group)
    if left_out:
        yield f"  ... {left_out} more (--limit 0 shows all, --json lists all)"


_GROUP_LEGEND = (
    "  (each symbol: link address, /kallsyms size as an oops prints it, '=' when another",
    "  address of the name has the same size so the size cannot tell them apart, nm type,",
    "  ELF name, compilation unit)",
)


def _group(group: AmbiguousName) -> Iterator[str]:
    verdict = "separated by size" if group.size_separates else "UNRESOLVABLE by size"
    origin = ", made by the rule" if group.made_by_cleanup else ""
    kind = "function" if group.is_text else "data"
    shown = group.printed_name or "'' (the empty name)"
    yield f"  {shown}: {group.addresses} addresses, {verdict} ({kind}{origin})"
    for member in group.members:
        symbol = member.symbol
        size = "-" if symbol.kallsyms_size is None else f"{symbol.kallsyms_size:#x}"
        shared = " " if member.size_unique else "="
        file = f"  {member.file}" if member.file else ""
        yield (
            f"    {symbol.link_address:016x} /{size:<8}{shared} {symbol.nm_type} "
            f"{symbol.name}{file}"
        )


def _lossy(analysis: NameAnalysis, rules: Sequence[RuleSummary], limit: int) -> Iterator[str]:
    summary = analysis.summary
    yield (
        f"names losing information under {summary.rule.name}: {summary.lossy} "
        f"({summary.merged} merged with another symbol's name)"
    )
    for other in rules:
        if other.lossy_by_kind:
            counts = ", ".join(f"{kind.value} {count}" for kind, count in other.lossy_by_kind)
            yield f"  {other.rule.name}: {counts}"
    # A few examples of every kind the selected rule cuts off, merged names first: those are
    # the frames that print as another function.
    kinds = [kind for kind, _ in summary.lossy_by_kind]
    each = max(1, limit // len(kinds)) if kinds and limit > 0 else 0
    for kind in kinds:
        names = sorted(
            (n for n in analysis.lossy if kind in n.removed),
            key=lambda n: (not n.merged, n.symbol.link_address),
        )
        shown, left_out = _limited(names, each)
        yield f"  {kind.value} under {summary.rule.name}:"
        for name in shown:
            merged = "  (merged: another symbol prints as this name)" if name.merged else ""
            yield (
                f"    {name.symbol.link_address:016x} {name.symbol.name} -> "
                f"{name.printed_name}{merged}"
            )
        if left_out:
            yield f"    ... {left_out} more"


_DUMP_LEGEND = (
    "  (missing: a vmlinux symbol the dump does not list, at its link address; extra: a dump",
    "  line the vmlinux has no symbol for, at the dump's address; moved: listed elsewhere than",
    "  link address + KASLR offset, or the link address itself for per-cpu symbols)",
)


def _dump(dump: DumpCheck, limit: int) -> Iterator[str]:
    yield f"dump {dump.path} ({dump.kind.value}): {dump.verdict.value.upper()}"
    yield f"  {dump.reason}"
    if dump.kaslr_offset is not None:
        offset = f"-{-dump.kaslr_offset:#x}" if dump.kaslr_offset < 0 else f"{dump.kaslr_offset:#x}"
        yield (
            f"  KASLR offset {offset} "
            f"({dump.offset_votes} of {dump.unique_names} unique names agree)"
        )
    yield (
        f"  {dump.compared} vmlinux symbols expected, {dump.vmlinux_entries} listed: "
        f"{dump.matched} matched, {len(dump.missing)} missing, {len(dump.extra)} extra, "
        f"{len(dump.moved)} moved"
        + (" (by name: addresses hidden)" if dump.addresses_hidden else "")
    )
    if dump.missing or dump.extra or dump.moved:
        yield from _DUMP_LEGEND
    if dump.module_entries:
        yield (f"  {dump.module_entries} module symbols not compared ({', '.join(dump.modules)})")
    if dump.skipped_lines:
        yield f"  {dump.skipped_lines} lines were not symbol lines"
    shown_missing, more_missing = _limited(dump.missing, limit)
    for symbol in shown_missing:
        yield f"  missing {symbol.link_address:016x} {symbol.nm_type} {symbol.name}"
    if more_missing:
        yield f"  ... {more_missing} more missing"
    shown_extra, more_extra = _limited(dump.extra, limit)
    for entry in shown_extra:
        yield f"  extra   {entry.runtime_address:016x} {entry.nm_type} {entry.name}"
    if more_extra:
        yield f"  ... {more_extra} more extra"
    shown_moved, more_moved = _limited(dump.moved, limit)
    for moved in shown_moved:
        yield (
            f"  moved   {moved.name}: expected {moved.expected_address:016x}, "
            f"found {moved.runtime_address:016x}"
        )
    if more_moved:
        yield f"  ... {more_moved} more moved"
