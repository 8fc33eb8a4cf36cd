"""The diff as one self-contained HTML page: inline CSS and SVG charts, no script, no external
asset, no network. Charts: section classes (BASE vs NEW), bytes per change class, directories,
top growers and shrinkers; then tables of what LTO inlined, specialized and removed."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ltosyms.diff.model import Change, ChangeClass, DiffReport, SymbolKind
from ltosyms.render.diff_text import SUMMARY_ORDER, class_counts, loaded_totals, number, signed

GROW = "#c0392b"
SHRINK = "#2e8b57"
BASE = "#9aa9bb"
NEW = "#3b6fb6"
TOP = 15

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#1d2330;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#dde3ea;padding-bottom:4px}.meta{color:#5a6577;font-size:12.5px}.meta code{font-size:12px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}.card{border:1px solid #dde3ea;
border-radius:8px;padding:10px 14px;min-width:150px}.card b{display:block;font-size:20px}
.card span{color:#5a6577;font-size:12px}.grow{color:#c0392b}.shrink{color:#2e8b57}
table{border-collapse:collapse;width:100%;font-size:12.5px;margin:6px 0}
th,td{padding:3px 8px;border-bottom:1px solid #eef1f5;text-align:left;vertical-align:top}
th{background:#f5f7fa;font-weight:600}td.n{text-align:right;font-variant-numeric:tabular-nums;
white-space:nowrap}code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
svg{max-width:100%;height:auto}
svg text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}
.note{color:#5a6577}
"""


def render_html(report: DiffReport) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>ltosyms diff</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>ltosyms diff</h1>",
        _meta(report),
        _cards(report),
        "<h2>Size by section class</h2>",
        '<div class="legend">'
        f'<i style="background:{BASE}"></i>BASE<i style="background:{NEW}"></i>NEW</div>',
        _section_chart(report),
        _section_table(report),
        "<h2>Bytes by change class</h2>",
        _class_chart(report),
        "<h2>Top growers</h2>",
        _diverging(_top(report, grow=True)),
        "<h2>Top shrinkers</h2>",
        _diverging(_top(report, grow=False)),
    ]
    if report.base.has_dwarf or report.new.has_dwarf:
        rows = [row for row in report.directories if row.delta][:TOP]
        parts += [
            "<h2>Directories with the largest change</h2>",
            _diverging(
                [
                    (row.directory, row.delta, f"{number(row.base_size)} → {number(row.new_size)}")
                    for row in rows
                ]
            ),
        ]
    parts += [
        _changes_table(
            "Dropped: inlined everywhere", report, ChangeClass.DROPPED_INLINED, callers=True
        ),
        _changes_table("Dropped: removed", report, ChangeClass.DROPPED_REMOVED),
        _changes_table("Specialized (clones)", report, ChangeClass.SPECIALIZED),
        _changes_table("Renamed (promoted statics)", report, ChangeClass.RENAMED),
        _inline_table(report),
    ]
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f'<li class="note">{escape(note)}</li>' for note in report.notes]
        parts.append("</ul>")
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
    counts = {c: (n, d) for c, n, d in class_counts(report, SymbolKind.FUNCTION)}
    cards = [
        (
            f"{signed(delta)} B",
            f"loaded size {number(base_total)} → {number(new_total)}",
            "grow" if delta > 0 else "shrink" if delta < 0 else "",
        ),
        (f"{number(report.base.functions)} → {number(report.new.functions)}", "functions", ""),
    ]
    for change_class in (
        ChangeClass.DROPPED_INLINED,
        ChangeClass.DROPPED_REMOVED,
        ChangeClass.SPECIALIZED,
        ChangeClass.RENAMED,
        ChangeClass.NEW,
    ):
        count, byte_delta = counts[change_class]
        cards.append((number(count), f"{change_class.value} ({signed(byte_delta)} B)", ""))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b class="{css}">{escape(value)}</b><span>{escape(label)}</span>'
            "</div>"
            for value, label, css in cards
        )
        + "</div>"
    )


def _section_chart(report: DiffReport) -> str:
    rows = [row for row in report.classes if row.section_class.is_loaded]
    if not rows:
        return ""
    largest = max(max(row.base_size, row.new_size) for row in rows) or 1
    label_width, bar_width, row_height = 90, 720, 34
    height = row_height * len(rows) + 8
    out = [
        f'<svg width="1060" height="{height}" viewBox="0 0 1060 {height}" role="img" '
        'aria-label="section sizes">'
    ]
    for position, row in enumerate(rows):
        y = 4 + position * row_height
        out.append(f'<text x="0" y="{y + 19}" font-size="13">{row.section_class.value}</text>')
        for offset, value, color in ((0, row.base_size, BASE), (14, row.new_size, NEW)):
            width = max(value * bar_width / largest, 1 if value else 0)
            out.append(
                f'<rect x="{label_width}" y="{y + offset}" width="{width:.1f}" '
                f'height="12" fill="{color}" rx="2"/>'
            )
        css = GROW if row.delta > 0 else SHRINK if row.delta < 0 else "#5a6577"
        out.append(
            f'<text x="{label_width + bar_width + 10}" y="{y + 19}" font-size="12">'
            f"{number(row.base_size)} → {number(row.new_size)} "
            f'<tspan fill="{css}">({signed(row.delta)})</tspan></text>'
        )
    out.append("</svg>")
    return "".join(out)


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
    return "".join(out)


def _class_chart(report: DiffReport) -> str:
    functions = {c: (n, d) for c, n, d in class_counts(report, SymbolKind.FUNCTION)}
    objects = {c: (n, d) for c, n, d in class_counts(report, SymbolKind.OBJECT)}
    rows = []
    for change_class in SUMMARY_ORDER:
        count = functions[change_class][0] + objects[change_class][0]
        delta = functions[change_class][1] + objects[change_class][1]
        rows.append(
            (
                change_class.value,
                delta,
                f"{number(functions[change_class][0])} functions, "
                f"{number(objects[change_class][0])} objects",
            )
            if count
            else (change_class.value, 0, "none")
        )
    return _diverging(rows, label_width=140)


def _top(report: DiffReport, grow: bool) -> list[tuple[str, int, str]]:
    changes = [c for c in report.changes if (c.delta > 0 if grow else c.delta < 0)]
    changes.sort(key=lambda c: -abs(c.delta))
    return [
        (
            c.display_name,
            c.delta,
            f"{c.change_class.value}, {number(c.base_size)} → {number(c.new_size)}",
        )
        for c in changes[:TOP]
    ]


def _diverging(rows: Sequence[tuple[str, int, str]], label_width: int = 250) -> str:
    """Horizontal bars: growth in red, shrinkage in green. Around a zero line when the rows
    have both signs, else from the left edge (growers, shrinkers)."""
    if not rows:
        return '<p class="note">none</p>'
    largest = max(abs(value) for _label, value, _note in rows) or 1
    both_signs = any(v > 0 for _l, v, _n in rows) and any(v < 0 for _l, v, _n in rows)
    span, row_height = 380, 24
    half = span / 2 if both_signs else span
    zero = label_width + (span / 2 if both_signs else 0)
    width = label_width + span + 360
    height = row_height * len(rows) + 6
    out = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    out.append(f'<line x1="{zero}" y1="0" x2="{zero}" y2="{height}" stroke="#c5ccd6"/>')
    for position, (label, value, note) in enumerate(rows):
        y = 3 + position * row_height
        bar = abs(value) * half / largest
        x = zero if value >= 0 or not both_signs else zero - bar
        color = GROW if value > 0 else SHRINK
        shown = label if len(label) <= 34 else label[:33] + "…"
        out.append(
            f'<text x="{label_width - 8}" y="{y + 15}" font-size="12.5" '
            f'text-anchor="end"><title>{escape(label)}</title>{escape(shown)}</text>'
        )
        if value:
            out.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{max(bar, 1):.1f}" '
                f'height="15" fill="{color}" rx="2"/>'
            )
        out.append(
            f'<text x="{label_width + span + 10}" y="{y + 15}" font-size="12.5">'
            f'<tspan font-weight="600">{signed(value)}</tspan> '
            f'<tspan fill="#5a6577">{escape(note)}</tspan></text>'
        )
    out.append("</svg>")
    return "".join(out)


def _changes_table(
    title: str,
    report: DiffReport,
    change_class: ChangeClass,
    callers: bool = False,
    limit: int = 40,
) -> str:
    changes = report.of_class(change_class, SymbolKind.FUNCTION)
    if not changes:
        return ""
    header = "<th>inlined into (NEW)</th>" if callers else "<th>inlined base → new</th>"
    out = [
        f"<h2>{escape(title)}: {number(len(changes))} functions, "
        f"{signed(sum(c.delta for c in changes))} bytes</h2>",
        f"<table><tr><th>Δ bytes</th><th>BASE</th><th>NEW</th><th>source</th>{header}</tr>",
    ]
    for change in changes[:limit]:
        out.append(
            f"<tr><td class=n>{signed(change.delta)}</td>"
            f"<td>{_names(change.base.names if change.base else ())} "
            f"<span class=note>{_size(change.base.size if change.base else None)}</span></td>"
            f"<td>{_names(change.new.names if change.new else ())} "
            f"<span class=note>{_size(change.new.size if change.new else None)}</span></td>"
            f"<td>{escape(_source(change))}</td><td>{_inline_cell(change, callers)}</td></tr>"
        )
    out.append("</table>")
    if len(changes) > limit:
        out.append(f'<p class="note">… {len(changes) - limit} more (see --json)</p>')
    return "".join(out)


def _names(names: Sequence[str]) -> str:
    if not names:
        return "—"
    shown = ", ".join(f"<code>{escape(name)}</code>" for name in names[:4])
    return shown + (f" +{len(names) - 4}" if len(names) > 4 else "")


def _size(size: int | None) -> str:
    return "" if size is None else f"{number(size)} B"


def _source(change: Change) -> str:
    group = change.base or change.new
    return (group.source if group else None) or ""


def _inline_cell(change: Change, callers: bool) -> str:
    if callers:
        names = ", ".join(
            f"<code>{escape(c.name)}</code>" + (f" x{c.count}" if c.count > 1 else "")
            for c in change.callers_new[:8]
        )
        more = len(change.callers_new) - 8
        return f"{change.inlined_count_new}x: {names}" + (f" +{more}" if more > 0 else "")
    if change.inlined_count_base is None or change.inlined_count_new is None:
        return "—"
    return f"{change.inlined_count_base} → {change.inlined_count_new}"


def _inline_table(report: DiffReport, limit: int = 25) -> str:
    rows = report.inline_counts
    if not rows:
        return ""
    out = [
        "<h2>Inlined instances that changed most</h2>",
        "<table><tr><th>function</th><th>declared in</th><th>base</th><th>new</th><th>Δ</th></tr>",
    ]
    for row in rows[:limit]:
        out.append(
            f"<tr><td><code>{escape(row.name)}</code></td><td>{escape(row.decl_file or '?')}"
            f"</td><td class=n>{number(row.count_base)}</td><td class=n>"
            f"{number(row.count_new)}</td><td class=n>{signed(row.delta)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)
