"""The ``ltosyms diff`` text report: summary first, then sections, directories, the classes
with the largest effects first, inline counts and notes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ltosyms.diff.model import (
    Change,
    ChangeClass,
    ClassTotals,
    DiffReport,
    DirectoryTotals,
    ImageSummary,
    SymbolKind,
    Visibility,
)

# Order in which classes are reported: what LTO did first, then plain size changes.
CLASS_ORDER = (
    ChangeClass.DROPPED_INLINED,
    ChangeClass.DROPPED_REMOVED,
    ChangeClass.OUTLINED,
    ChangeClass.SPECIALIZED,
    ChangeClass.SPLIT,
    ChangeClass.FOLDED,
    ChangeClass.RENAMED,
    ChangeClass.GROWN,
    ChangeClass.SHRUNK,
    ChangeClass.NEW,
    ChangeClass.UNCHANGED,
)
SUMMARY_ORDER = (
    ChangeClass.UNCHANGED,
    ChangeClass.GROWN,
    ChangeClass.SHRUNK,
    ChangeClass.RENAMED,
    ChangeClass.SPECIALIZED,
    ChangeClass.SPLIT,
    ChangeClass.DROPPED_INLINED,
    ChangeClass.DROPPED_REMOVED,
    ChangeClass.FOLDED,
    ChangeClass.OUTLINED,
    ChangeClass.NEW,
)


def number(value: int) -> str:
    return f"{value:,}"


def signed(value: int) -> str:
    return f"{value:+,}"


def percent(delta: int, base: int) -> str:
    return f"{delta * 100 / base:+.2f}%" if base else "n/a"


def class_counts(report: DiffReport, kind: SymbolKind) -> list[tuple[ChangeClass, int, int]]:
    """(class, groups, byte delta) per class, in summary order."""
    grouped = report.by_class()
    rows = []
    for change_class in SUMMARY_ORDER:
        changes = grouped.get((change_class, kind), [])
        rows.append((change_class, len(changes), report.class_delta(change_class, kind)))
    return rows


def loaded_totals(classes: Sequence[ClassTotals]) -> tuple[int, int]:
    loaded = [row for row in classes if row.section_class.is_loaded]
    return sum(row.base_size for row in loaded), sum(row.new_size for row in loaded)


def change_notes(change: Change, callers: int = 6) -> list[str]:
    """What a report says about one change besides sizes: inlining, folding, binding."""
    notes = []
    if change.change_class is ChangeClass.DROPPED_INLINED:
        shown = ", ".join(
            caller.name + (f" x{caller.count}" if caller.count > 1 else "")
            for caller in change.callers_new[:callers]
        )
        more = len(change.callers_new) - callers
        notes.append(
            f"inlined {change.inlined_count_new}x into {shown}"
            + (f", +{more} more" if more > 0 else "")
        )
    elif change.change_class is ChangeClass.OUTLINED:
        notes.append(f"inlined {change.inlined_count_base}x in BASE, out of line in NEW")
    elif (
        change.inlined_count_base is not None
        and change.inlined_count_new is not None
        and (change.inlined_count_base or change.inlined_count_new)
    ):
        notes.append(f"inlined {change.inlined_count_base} -> {change.inlined_count_new}")
    if change.folded_with is not None:
        side = "NEW" if change.new is None else "BASE"
        notes.append(f"folded into {change.folded_with} in {side} (identical code)")
    if change.visibility is Visibility.LOCALIZED:
        notes.append("made local")
    elif change.visibility is Visibility.GLOBALIZED:
        notes.append("made global")
    return notes


def render_text(report: DiffReport, limit: int | None = 20) -> Iterator[str]:
    """The report as lines; ``limit`` entries per class (None: all)."""
    yield "ltosyms diff"
    yield from _image_line("BASE", report.base)
    yield from _image_line("NEW ", report.new)
    yield ""
    yield from _summary(report)
    yield ""
    yield from _class_table(report)
    yield ""
    yield from _sections(report)
    if report.directories and (report.base.has_dwarf or report.new.has_dwarf):
        yield ""
        yield from _directories(report, limit)
    if report.subsystems:
        yield ""
        yield from _subsystems(report, limit)
    grouped = report.by_class()
    for kind, title in ((SymbolKind.FUNCTION, "Functions"), (SymbolKind.OBJECT, "Objects")):
        yield ""
        yield f"{title} by class, largest effects first"
        for change_class in CLASS_ORDER:
            changes = grouped.get((change_class, kind), [])
            if not changes or change_class is ChangeClass.UNCHANGED:
                continue
            total = report.class_delta(change_class, kind)
            yield from _class_section(change_class, changes, total, limit, kind)
    if report.inline_counts:
        yield ""
        yield from _inline_counts(report, limit)
    if report.notes:
        yield ""
        yield "Notes"
        for note in report.notes:
            yield f"  - {note}"


def _image_line(role: str, image: ImageSummary) -> Iterator[str]:
    build_id = image.build_id[:12] if image.build_id else "none"
    dwarf = (
        f"DWARF read in {image.dwarf_seconds:.1f} s"
        if image.has_dwarf and image.dwarf_seconds is not None
        else "DWARF not read"
    )
    yield f"  {role}  {image.path}  (build id {build_id}, {dwarf})"


def _summary(report: DiffReport) -> Iterator[str]:
    base_total, new_total = loaded_totals(report.classes)
    yield "Summary"
    yield (
        f"  loaded size (text+rodata+data+bss+init): {number(base_total)} -> "
        f"{number(new_total)} bytes ({signed(new_total - base_total)}, "
        f"{percent(new_total - base_total, base_total)})"
    )
    # Section sizes hide code growth when a section is padded to a fixed size (the corpus
    # kernels' .text is 6 MiB in every build): the sum of function sizes does not.
    base_code, new_code = report.base.function_bytes, report.new.function_bytes
    yield (
        f"  function bytes (sum of function sizes): {number(base_code)} -> "
        f"{number(new_code)} ({signed(new_code - base_code)}, "
        f"{percent(new_code - base_code, base_code)})"
    )
    grouped = report.by_class()
    for kind, label in ((SymbolKind.FUNCTION, "functions"), (SymbolKind.OBJECT, "objects")):
        base_count = report.base.functions if kind is SymbolKind.FUNCTION else report.base.objects
        new_count = report.new.functions if kind is SymbolKind.FUNCTION else report.new.objects
        # Counts only: the byte deltas of class_counts() are the class table's.
        parts = [
            f"{change_class.value} {number(len(grouped[(change_class, kind)]))}"
            for change_class in SUMMARY_ORDER
            if grouped.get((change_class, kind))
        ]
        yield f"  {label}: {number(base_count)} -> {number(new_count)}: " + ", ".join(parts)
    bindings = report.binding_changes(SymbolKind.FUNCTION)
    if any(bindings.values()):
        yield (
            f"  binding: {number(bindings[Visibility.LOCALIZED])} functions global in BASE are "
            f"local in NEW, {number(bindings[Visibility.GLOBALIZED])} the other way"
        )


def _class_table(report: DiffReport) -> Iterator[str]:
    yield "Functions and objects per class (bytes = NEW - BASE)"
    yield f"  {'class':<16} {'functions':>10} {'bytes':>11} {'objects':>9} {'bytes':>11}"
    functions = class_counts(report, SymbolKind.FUNCTION)
    objects = class_counts(report, SymbolKind.OBJECT)
    for (change_class, f_count, f_delta), (_same, o_count, o_delta) in zip(
        functions, objects, strict=True
    ):
        yield (
            f"  {change_class.value:<16} {number(f_count):>10} {signed(f_delta):>11} "
            f"{number(o_count):>9} {signed(o_delta):>11}"
        )


def _sections(report: DiffReport) -> Iterator[str]:
    yield "Sections by class (size -A), and what named symbols account for"
    yield (
        f"  {'class':<8} {'base':>13} {'new':>13} {'delta':>11} {'symbols':>11} "
        f"{'padding/alignment':>18}"
    )
    for row in report.classes:
        yield (
            f"  {row.section_class.value:<8} {number(row.base_size):>13} "
            f"{number(row.new_size):>13} {signed(row.delta):>11} {signed(row.symbol_delta):>11} "
            f"{signed(row.padding_delta):>18}"
        )
    base_total = sum(row.base_size or 0 for row in report.sections)
    new_total = sum(row.new_size or 0 for row in report.sections)
    yield (
        f"  {'Total':<8} {number(base_total):>13} {number(new_total):>13} "
        f"{signed(new_total - base_total):>11}"
    )
    changed = [
        row
        for row in report.sections
        if row.base_size != row.new_size
        or (row.base_class and row.new_class and row.base_class is not row.new_class)
    ]
    if changed:
        yield "  sections that differ (class by each build's own section header):"
        for section in changed:
            base = "-" if section.base_size is None else number(section.base_size)
            new = "-" if section.new_size is None else number(section.new_size)
            classes = section.section_class.value
            if section.base_class and section.new_class and section.base_class != section.new_class:
                classes = f"{section.base_class.value}->{section.new_class.value}"
            yield (
                f"    {section.name:<24} {classes:<13} {base:>13} "
                f"{new:>13} {signed(section.delta):>11}"
            )


def _directories(report: DiffReport, limit: int | None) -> Iterator[str]:
    title = (
        f"Directories at depth {report.directory_depth} (DWARF compilation units), "
        "largest changes first"
    )
    yield from _rollup(title, "directory", report.directories, limit, 32)


def _subsystems(report: DiffReport, limit: int | None) -> Iterator[str]:
    title = "MAINTAINERS subsystems (most specific section of each unit), largest changes first"
    yield from _rollup(title, "subsystem", report.subsystems, limit, 48)


def _rollup(
    title: str, column: str, rows_in: Sequence[DirectoryTotals], limit: int | None, width: int
) -> Iterator[str]:
    rows = [row for row in rows_in if row.delta] or list(rows_in)
    shown = rows if limit is None else rows[:limit]
    yield title
    yield f"  {column:<{width}} {'base':>11} {'new':>11} {'delta':>9} {'functions':>13}"
    for row in shown:
        name = row.directory if len(row.directory) <= width else row.directory[: width - 1] + "~"
        yield (
            f"  {name:<{width}} {number(row.base_size):>11} {number(row.new_size):>11} "
            f"{signed(row.delta):>9} {row.functions_base:>6}->{row.functions_new}"
        )
    if len(rows) > len(shown):
        yield f"  ... {len(rows) - len(shown)} more"


def _class_section(
    change_class: ChangeClass,
    changes: list[Change],
    total: int,
    limit: int | None,
    kind: SymbolKind,
) -> Iterator[str]:
    noun = "functions" if kind is SymbolKind.FUNCTION else "objects"
    yield f"== {change_class.value}: {number(len(changes))} {noun}, {signed(total)} bytes"
    shown = changes if limit is None else changes[:limit]
    for change in shown:
        yield "  " + _change_line(change)
    if len(changes) > len(shown):
        yield f"  ... {len(changes) - len(shown)} more"


def _change_line(change: Change) -> str:
    sizes = f"{number(change.base_size):>8} -> {number(change.new_size):<8}"
    text = f"{signed(change.delta):>9}  {sizes} {_names(change)}"
    extra = [*change_notes(change), change.source or ""]
    shown = "; ".join(part for part in extra if part)
    return text + (f"  [{shown}]" if shown else "")


def _names(change: Change) -> str:
    group = change.new or change.base
    if group is not None and group.is_collection:
        # Hundreds of string literals are one row: named as what they are, not after one.
        return group.label
    if change.base and change.new:
        base_names = list(change.base.names)
        new_names = list(change.new.names)
        if base_names == new_names:
            return _join(base_names)
        return f"{_join(base_names)} -> {_join(new_names)}"
    group = change.base or change.new
    assert group is not None
    return _join(list(group.names))


def _join(names: list[str], limit: int = 4) -> str:
    text = ", ".join(names[:limit])
    return text + (f", +{len(names) - limit}" if len(names) > limit else "")


def _inline_counts(report: DiffReport, limit: int | None) -> Iterator[str]:
    rows = report.inline_counts
    shown = rows if limit is None else rows[:limit]
    yield "Inlined instances per function (DW_TAG_inlined_subroutine), largest changes first"
    yield f"  {'function':<36} {'declared in':<40} {'base':>7} {'new':>7} {'delta':>7}"
    for row in shown:
        yield (
            f"  {row.name:<36} {row.decl_file or '?':<40} {row.count_base:>7} "
            f"{row.count_new:>7} {signed(row.delta):>7}"
        )
    if len(rows) > len(shown):
        yield f"  ... {len(rows) - len(shown)} more functions whose inline count changed"
