"""The ``ltosyms.diff/2`` JSON document.

Required by the schema: ``sections`` (``name``, ``base_size``, ``new_size``) and ``functions``
(``class``, ``base``/``new`` with ``names`` and ``size`` or null, ``inlined_count_base``,
``inlined_count_new``). Everything else is additional: section classes with the padding that
reconciles symbol and section sizes, objects, directories, inline-count changes, notes.
Sizes are bytes; addresses are hex strings; a count is null when that build's DWARF was not read.

Fields added since the first version (none changed meaning): ``sections[].base_class`` and
``new_class`` (each build's own class of the section; ``class`` stays BASE's, NEW's for a
NEW-only section), ``base``/``new`` ``machine``, ``function_bytes``, ``object_bytes``;
per change ``label``, ``file``, ``visibility`` (``localized``, ``globalized`` or null),
``folded_with``; per group ``nm_type``, ``member_count``, ``alias_names``;
``class_counts``, ``directory_depth``, ``directory_tree`` (every directory at every depth),
``subsystems`` (with ``--maintainers``). Class values added: ``split``, ``folded``,
``outlined``.
"""

from __future__ import annotations

from typing import Any

from ltosyms.diff.model import (
    Change,
    ChangeClass,
    DiffReport,
    DirectoryTotals,
    ImageSummary,
    SymbolGroup,
    SymbolKind,
)

SCHEMA = "ltosyms.diff/2"


def report_json(report: DiffReport) -> dict[str, Any]:
    grouped = report.by_class()
    return {
        "schema": SCHEMA,
        "base": _image(report.base),
        "new": _image(report.new),
        "inline_evidence": report.inline_evidence,
        "sections": [
            {
                "name": row.name,
                "class": row.section_class.value,
                "base_class": row.base_class.value if row.base_class else None,
                "new_class": row.new_class.value if row.new_class else None,
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
        "class_counts": {
            kind.value + "s": {
                change_class.value: len(grouped.get((change_class, kind), ()))
                for change_class in ChangeClass
            }
            for kind in SymbolKind
        },
        "functions": [_change(c) for c in report.changes if c.kind is SymbolKind.FUNCTION],
        "objects": [_change(c) for c in report.changes if c.kind is SymbolKind.OBJECT],
        "directory_depth": report.directory_depth,
        "directories": [_rollup(row, "directory") for row in report.directories],
        "directory_tree": [_rollup(row, "directory") for row in report.directory_tree],
        "subsystems": [_rollup(row, "subsystem") for row in report.subsystems],
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


def _rollup(row: DirectoryTotals, key: str) -> dict[str, Any]:
    depth = {"depth": row.depth} if key == "directory" else {}
    return {
        key: row.directory,
        **depth,
        "base_size": row.base_size,
        "new_size": row.new_size,
        "functions_base": row.functions_base,
        "functions_new": row.functions_new,
    }


def _image(image: ImageSummary) -> dict[str, Any]:
    return {
        "path": image.path,
        "build_id": image.build_id,
        "machine": image.machine,
        "dwarf": image.has_dwarf,
        "dwarf_seconds": round(image.dwarf_seconds, 3) if image.dwarf_seconds is not None else None,
        "functions": image.functions,
        "objects": image.objects,
        "function_bytes": image.function_bytes,
        "object_bytes": image.object_bytes,
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
        "nm_type": group.nm_type,
        "member_count": group.member_count,
        "alias_names": list(group.alias_names),
    }


def _change(change: Change) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "class": change.change_class.value,
        "base": _group(change.base),
        "new": _group(change.new),
        "delta": change.delta,
        "directory": change.directory,
        "label": change.label,
        "file": change.source,
        "visibility": change.visibility.value if change.visibility else None,
        "folded_with": change.folded_with,
    }
    if change.kind is SymbolKind.FUNCTION:
        entry["inlined_count_base"] = change.inlined_count_base
        entry["inlined_count_new"] = change.inlined_count_new
        if change.callers_new:
            entry["inlined_into_new"] = [
                {"name": caller.name, "count": caller.count} for caller in change.callers_new
            ]
    return entry
