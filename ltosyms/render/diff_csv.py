"""The diff as CSV (RFC 4180, a header row first): one row per function or object change, for
spreadsheets and scripts. Every change is a row, unchanged ones included."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from ltosyms.diff.maintainers import Maintainers
from ltosyms.diff.model import Change, DiffReport, SymbolGroup
from ltosyms.render.diff_text import change_notes

COLUMNS = (
    "kind",
    "class",
    "name",
    "base_names",
    "new_names",
    "base_size",
    "new_size",
    "delta",
    "file",
    "directory",
    "subsystem",
    "base_address",
    "new_address",
    "visibility",
    "inlined_count_base",
    "inlined_count_new",
    "folded_with",
    "notes",
)


def render_csv(report: DiffReport, maintainers: Maintainers | None = None) -> Iterator[str]:
    """Lines of CSV (each ending in CRLF, as the csv module writes them)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    yield _flush(buffer)
    for change in report.changes:
        writer.writerow(_row(change, maintainers))
        yield _flush(buffer)


def _flush(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def _row(change: Change, maintainers: Maintainers | None) -> list[object]:
    unit = change.unit
    subsystem = maintainers.subsystem_of(unit) if maintainers and unit else None
    return [
        change.kind.value,
        change.change_class.value,
        change.label,
        _names(change.base),
        _names(change.new),
        change.base_size if change.base else "",
        change.new_size if change.new else "",
        change.delta,
        change.source or "",
        change.directory or "",
        subsystem or "",
        f"{change.base.link_address:#x}" if change.base else "",
        f"{change.new.link_address:#x}" if change.new else "",
        change.visibility.value if change.visibility else "",
        "" if change.inlined_count_base is None else change.inlined_count_base,
        "" if change.inlined_count_new is None else change.inlined_count_new,
        change.folded_with or "",
        "; ".join(change_notes(change)),
    ]


def _names(group: SymbolGroup | None) -> str:
    return " ".join(group.names) if group else ""
