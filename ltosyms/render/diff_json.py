"""The ``ltosyms.diff/1`` JSON document.

Required by the schema: ``sections`` (``name``, ``base_size``, ``new_size``) and ``functions``
(``class``, ``base``/``new`` with ``names`` and ``size`` or null, ``inlined_count_base``,
``inlined_count_new``). Everything else is additional: section classes with the padding that
reconciles symbol and section sizes, objects, directories, inline-count changes, notes.
Sizes are bytes; addresses are hex strings; a count is null when that build's DWARF was not read.
"""

from __future__ import annotations

from typing import Any

from ltosyms.diff.model import Change, DiffReport, ImageSummary, SymbolGroup, SymbolKind

SCHEMA = "ltosyms.diff/1"


def report_json(report: DiffReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "base": _image(report.base),
        "new": _image(report.new),
        "inline_evidence": report.inline_evidence,
        "sections": [
            {
                "name": row.name,
                "class": row.section_class.value,
                "base_size": row.base_size,
                "new_size": row.new_size,
            }
            for row in report.sections
        ],
        "section_classes": [
            {
                "class": row.section_class.value,
                "base_size": row.base_size,
                "new_size": row.new_size,
                "base_symbol_bytes": row.base_symbol_bytes,
                "new_symbol_bytes": row.new_symbol_bytes,
                "base_padding": row.base_padding,
                "new_padding": row.new_padding,
            }
            for row in report.classes
        ],
        "functions": [_change(c) for c in report.changes if c.kind is SymbolKind.FUNCTION],
        "objects": [_change(c) for c in report.changes if c.kind is SymbolKind.OBJECT],
        "directories": [
            {
                "directory": row.directory,
                "base_size": row.base_size,
                "new_size": row.new_size,
                "functions_base": row.functions_base,
                "functions_new": row.functions_new,
            }
            for row in report.directories
        ],
        "inline_counts": [
            {
                "name": row.name,
                "decl_file": row.decl_file,
                "count_base": row.count_base,
                "count_new": row.count_new,
            }
            for row in report.inline_counts
        ],
        "notes": list(report.notes),
    }


def _image(image: ImageSummary) -> dict[str, Any]:
    return {
        "path": image.path,
        "build_id": image.build_id,
        "dwarf": image.has_dwarf,
        "dwarf_seconds": round(image.dwarf_seconds, 3) if image.dwarf_seconds is not None else None,
        "functions": image.functions,
        "objects": image.objects,
    }


def _group(group: SymbolGroup | None) -> dict[str, Any] | None:
    if group is None:
        return None
    return {
        "names": list(group.names),
        "size": group.size,
        "address": f"{group.link_address:#x}",
        "section_class": group.section_class.value,
        "unit": group.unit,
        "file_symbol": group.file_symbol,
        "decl_file": group.decl_file,
        "global": group.is_global,
    }


def _change(change: Change) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "class": change.change_class.value,
        "base": _group(change.base),
        "new": _group(change.new),
        "delta": change.delta,
        "directory": change.directory,
    }
    if change.kind is SymbolKind.FUNCTION:
        entry["inlined_count_base"] = change.inlined_count_base
        entry["inlined_count_new"] = change.inlined_count_new
        if change.callers_new:
            entry["inlined_into_new"] = [
                {"name": caller.name, "count": caller.count} for caller in change.callers_new
            ]
    return entry
