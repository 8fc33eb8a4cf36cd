"""The diff as one self-contained HTML page: inline CSS, SVG charts, and tables of every change
that sort (click a column) and filter (type in the box) with an inline script. Nothing is
fetched: a Content-Security-Policy forbids every network request, so the page works offline
and from a mail attachment.

Charts: section classes (BASE vs NEW), bytes per change class, top growers and shrinkers,
directories. Tables: every function and object change of every class, every directory at
every depth (pick the depth), MAINTAINERS subsystems (with ``--maintainers``), inline counts.
The table rows travel as JSON in the page (``<script type="application/json">``); the script
(``diff_html.js`` beside this module) draws the first rows of the current view and more on
request. The view is kept in the URL fragment, e.g. ``#changes.q=put_page&changes.sort=delta``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from importlib import resources
from typing import Any

from ltosyms.diff.model import ChangeClass, DiffReport, DirectoryTotals, SymbolKind
from ltosyms.render.diff_charts import (
    BASE,
    NEW,
    TOP,
    class_chart,
    diverging,
    section_chart,
    top_changes,
)
from ltosyms.render.diff_text import (
    SUMMARY_ORDER,
    change_notes,
    class_counts,
    loaded_totals,
    number,
    signed,
)

# No request of any kind: scripts and styles only from the page itself.
_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
PAGE_ROWS = 500  # rows drawn at first per table; "show all" draws the rest

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;
max-width:1280px;color:#1d2330;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#dde3ea;padding-bottom:4px}.meta{color:#5a6577;font-size:12.5px}.meta code{font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}.card{border:1px solid #dde3ea;
border-radius:8px;padding:10px 14px;min-width:150px}.card b{display:block;font-size:20px}
.card span{color:#5a6577;font-size:12px}.grow{color:#c0392b}.shrink{color:#2e8b57}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin:6px 0}
th,td{padding:3px 8px;border-bottom:1px solid #eef1f5;text-align:left;vertical-align:top}
th{background:#f5f7fa;font-weight:600;position:sticky;top:0}
table.rows th{cursor:pointer;user-select:none}table.rows th.asc:after{content:" \\25B2"}
table.rows th.desc:after{content:" \\25BC"}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
table.rows td{max-width:28em}
svg{max-width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}
.note{color:#5a6577}.controls{display:flex;gap:10px;align-items:center;margin:8px 0;
flex-wrap:wrap}.controls input{width:320px;padding:4px 6px}.controls select{padding:3px}
.count{color:#5a6577;font-size:12px}
"""


def render_html(report: DiffReport) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>ltosyms diff</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>ltosyms diff</h1>",
        _meta(report),
        _cards(report),
        "<h2>Size by section class</h2>",
        '<div class="legend">'
        f'<i style="background:{BASE}"></i>BASE<i style="background:{NEW}"></i>NEW</div>',
        section_chart(report),
        _section_table(report),
        "<h2>Bytes by change class</h2>",
        class_chart(report),
        "<h2>Top growers</h2>",
        diverging(top_changes(report, grow=True)),
        "<h2>Top shrinkers</h2>",
        diverging(top_changes(report, grow=False)),
    ]
    if report.base.has_dwarf or report.new.has_dwarf:
        rows = [row for row in report.directories if row.delta][:TOP]
        parts += [
            f"<h2>Directories with the largest change (depth {report.directory_depth})</h2>",
            diverging(
                [
                    (row.directory, row.delta, f"{number(row.base_size)} → {number(row.new_size)}")
                    for row in rows
                ]
            ),
        ]
    parts += [
        "<noscript><p class=note>The tables below need the page's own script; "
        "<code>--json</code> and <code>--format csv</code> give the same rows.</p></noscript>",
        _changes_table(report),
        _directory_table(report),
        _subsystem_table(report),
        _inline_table(report),
    ]
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f'<li class="note">{escape(note)}</li>' for note in report.notes]
        parts.append("</ul>")
    script = resources.files("ltosyms.render").joinpath("diff_html.js").read_text("utf-8")
    parts.append(f"<script>{script}</script>")
    parts.append("</body></html>")
    return "\n".join(part for part in parts if part)


def _meta(report: DiffReport) -> str:
    rows = []
    for role, image in (("BASE", report.base), ("NEW", report.new)):
        dwarf = "DWARF read" if image.has_dwarf else "DWARF not read"
        rows.append(
            f"<div><b>{role}</b> <code>{escape(image.path)}</code> · build id "
            f"<code>{escape(image.build_id or 'none')}</code> · {dwarf}</div>"
        )
    return f'<div class="meta">{"".join(rows)}</div>'


def _cards(report: DiffReport) -> str:
    base_total, new_total = loaded_totals(report.classes)
    delta = new_total - base_total
    code_delta = report.new.function_bytes - report.base.function_bytes
    counts = {c: (n, d) for c, n, d in class_counts(report, SymbolKind.FUNCTION)}
    bindings = report.binding_changes(SymbolKind.FUNCTION)
    cards = [
        (
            f"{signed(delta)} B",
            f"loaded size {number(base_total)} → {number(new_total)}",
            _css(delta),
        ),
        (
            f"{signed(code_delta)} B",
            f"function bytes {number(report.base.function_bytes)} → "
            f"{number(report.new.function_bytes)}",
            _css(code_delta),
        ),
        (f"{number(report.base.functions)} → {number(report.new.functions)}", "functions", ""),
    ]
    for change_class in (
        ChangeClass.DROPPED_INLINED,
        ChangeClass.DROPPED_REMOVED,
        ChangeClass.OUTLINED,
        ChangeClass.SPECIALIZED,
        ChangeClass.SPLIT,
        ChangeClass.RENAMED,
        ChangeClass.NEW,
    ):
        count, byte_delta = counts[change_class]
        cards.append((number(count), f"{change_class.value} ({signed(byte_delta)} B)", ""))
    cards.append(
        (number(sum(bindings.values())), "functions whose binding changed (made local/global)", "")
    )
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b class="{css}">{escape(value)}</b><span>{escape(label)}</span>'
            "</div>"
            for value, label, css in cards
        )
        + "</div>"
    )


def _css(delta: int) -> str:
    return "grow" if delta > 0 else "shrink" if delta < 0 else ""


def _section_table(report: DiffReport) -> str:
    out = [
        "<table><tr><th>class</th><th>base</th><th>new</th><th>delta</th>"
        "<th>named symbols Δ</th><th>padding/alignment Δ</th></tr>"
    ]
    for row in report.classes:
        out.append(
            f"<tr><td>{row.section_class.value}</td><td class=n>{number(row.base_size)}</td>"
            f"<td class=n>{number(row.new_size)}</td><td class=n>{signed(row.delta)}</td>"
            f"<td class=n>{signed(row.symbol_delta)}</td>"
            f"<td class=n>{signed(row.padding_delta)}</td></tr>"
        )
    out.append("</table>")
    moved = [
        f"<code>{escape(row.name)}</code> ({row.base_class.value} → {row.new_class.value})"
        for row in report.sections
        if row.base_class and row.new_class and row.base_class is not row.new_class
    ]
    if moved:
        listed = ", ".join(moved)
        out.append(f'<p class="note">Classed by each build\'s own section header: {listed}.</p>')
    return "".join(out)


def _data_table(
    table_id: str,
    title: str,
    columns: Sequence[dict[str, Any]],
    rows: Sequence[Sequence[object]],
    *,
    sort: str | None,
    direction: str = "desc",
    choices: Sequence[tuple[str, str, Sequence[str], str]] = (),
    placeholder: str = "filter: any part of a name, file, class…",
) -> str:
    """A heading, the controls and an empty table the script fills from the JSON rows.
    ``choices``: (column key, label, values, preselected value) drop-downs that keep the rows
    with that value; ``sort`` None keeps the rows' own order (largest effects first)."""
    spec = {
        "columns": list(columns),
        "rows": [list(row) for row in rows],
        "sort": sort,
        "dir": direction,
        "page": PAGE_ROWS,
    }
    # JSON inside <script>: "<" escaped so that no "</script>" can end the element early.
    data = json.dumps(spec, separators=(",", ":")).replace("<", "\\u003c")
    selects = "".join(
        f'<label>{escape(label)} <select data-table="{table_id}" data-choice="{key}">'
        '<option value="">all</option>'
        + "".join(
            f'<option value="{escape(v)}"{" selected" if v == chosen else ""}>{escape(v)}</option>'
            for v in values
        )
        + "</select></label>"
        for key, label, values, chosen in choices
    )
    return (
        f"<h2>{escape(title)}</h2>"
        f'<div class="controls"><input type="search" data-table="{table_id}" '
        f'id="{table_id}-filter" placeholder="{escape(placeholder)}">{selects}'
        f'<span class="count" id="{table_id}-count"></span></div>'
        f'<script type="application/json" id="{table_id}-data">{data}</script>'
        f'<table class="rows" id="{table_id}" data-source="{table_id}-data"></table>'
        f'<button type="button" id="{table_id}-more" hidden>show all rows</button>'
    )


_CHANGE_COLUMNS = (
    {"key": "delta", "label": "Δ bytes", "type": "delta"},
    {"key": "class", "label": "class", "type": "text"},
    {"key": "kind", "label": "kind", "type": "text", "hidden": True},
    {"key": "name", "label": "name", "type": "code"},
    {"key": "base", "label": "BASE symbols", "type": "code"},
    {"key": "base_size", "label": "BASE bytes", "type": "num"},
    {"key": "new", "label": "NEW symbols", "type": "code"},
    {"key": "new_size", "label": "NEW bytes", "type": "num"},
    {"key": "file", "label": "file", "type": "text"},
    {"key": "binding", "label": "binding", "type": "text"},
    {"key": "inlined_base", "label": "inlined BASE", "type": "num"},
    {"key": "inlined_new", "label": "inlined NEW", "type": "num"},
    {"key": "notes", "label": "notes", "type": "text"},
)


def _changes_table(report: DiffReport) -> str:
    rows = []
    for change in report.changes:
        rows.append(
            (
                change.delta,
                change.change_class.value,
                change.kind.value,
                change.display_name,
                _names(change.base.names) if change.base else "",
                change.base_size if change.base else None,
                _names(change.new.names) if change.new else "",
                change.new_size if change.new else None,
                change.source or "",
                change.visibility.value if change.visibility else "",
                change.inlined_count_base,
                change.inlined_count_new,
                "; ".join(note for note in change_notes(change, callers=8) if note),
            )
        )
    classes = [c.value for c in SUMMARY_ORDER if report.of_class(c)]
    return _data_table(
        "changes",
        f"Every function and object: {number(len(rows))} changes",
        _CHANGE_COLUMNS,
        rows,
        sort=None,
        choices=(("class", "class", classes, ""), ("kind", "kind", ("function", "object"), "")),
    )


def _names(names: Sequence[str], limit: int = 3) -> str:
    shown = " ".join(names[:limit])
    return shown + (f" +{len(names) - limit}" if len(names) > limit else "")


_ROLLUP_COLUMNS = (
    {"key": "directory", "label": "directory", "type": "code"},
    {"key": "depth", "label": "depth", "type": "num"},
    {"key": "base_size", "label": "BASE bytes", "type": "num"},
    {"key": "new_size", "label": "NEW bytes", "type": "num"},
    {"key": "delta", "label": "Δ bytes", "type": "delta"},
    {"key": "functions_base", "label": "functions BASE", "type": "num"},
    {"key": "functions_new", "label": "functions NEW", "type": "num"},
)


def _rollup_rows(rows: Sequence[DirectoryTotals], depth: bool) -> list[tuple[object, ...]]:
    return [
        (
            row.directory,
            row.depth if depth else None,
            row.base_size,
            row.new_size,
            row.delta,
            row.functions_base,
            row.functions_new,
        )
        for row in rows
    ]


def _directory_table(report: DiffReport) -> str:
    if not report.directory_tree or not (report.base.has_dwarf or report.new.has_dwarf):
        return ""
    depths = [str(depth) for depth in sorted({row.depth for row in report.directory_tree})]
    return _data_table(
        "dirs",
        "Directories (DWARF compilation units) at any depth: pick one",
        _ROLLUP_COLUMNS,
        _rollup_rows(report.directory_tree, depth=True),
        sort="delta",
        choices=(("depth", "depth", depths, str(report.directory_depth)),),
        placeholder="filter: directory",
    )


def _subsystem_table(report: DiffReport) -> str:
    if not report.subsystems:
        return ""
    columns = [
        {"key": "subsystem", "label": "MAINTAINERS section", "type": "text"},
        *[column for column in _ROLLUP_COLUMNS[1:] if column["key"] != "depth"],
    ]
    rows = [(row[0], *row[2:]) for row in _rollup_rows(report.subsystems, depth=False)]
    return _data_table(
        "subsystems",
        "MAINTAINERS subsystems (most specific section of each file)",
        columns,
        rows,
        sort="delta",
        placeholder="filter: subsystem",
    )


def _inline_table(report: DiffReport) -> str:
    if not report.inline_counts:
        return ""
    columns = (
        {"key": "name", "label": "function", "type": "code"},
        {"key": "decl_file", "label": "declared in", "type": "text"},
        {"key": "base", "label": "inlined BASE", "type": "num"},
        {"key": "new", "label": "inlined NEW", "type": "num"},
        {"key": "delta", "label": "Δ", "type": "delta"},
    )
    rows = [
        (row.name, row.decl_file or "?", row.count_base, row.count_new, row.delta)
        for row in report.inline_counts
    ]
    return _data_table(
        "inlines",
        "Inlined instances per function (DW_TAG_inlined_subroutine) that changed",
        columns,
        rows,
        sort="delta",
        placeholder="filter: function or file",
    )
