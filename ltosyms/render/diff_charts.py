"""SVG charts of a diff for the HTML page: section classes (BASE vs NEW bars) and diverging
bars (growth red, shrinkage green). Pure markup: no script, no external asset."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ltosyms.diff.model import DiffReport, SymbolKind
from ltosyms.render.diff_text import SUMMARY_ORDER, class_counts, number, signed

GROW = "#c0392b"
SHRINK = "#2e8b57"
BASE = "#9aa9bb"
NEW = "#3b6fb6"
TOP = 15


def section_chart(report: DiffReport) -> str:
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


def class_chart(report: DiffReport) -> str:
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
    return diverging(rows, label_width=140)


def top_changes(report: DiffReport, grow: bool) -> list[tuple[str, int, str]]:
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


def diverging(rows: Sequence[tuple[str, int, str]], label_width: int = 250) -> str:
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
