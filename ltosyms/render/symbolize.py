"""``symbolize`` results as addr2line-like text or the ``ltosyms.symbolize/1`` JSON document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ltosyms.decode.symbolize import Symbolized
from ltosyms.render.decode_json import location_json, resolved_json
from ltosyms.render.decode_text import resolution_lines, shown_name

SCHEMA = "ltosyms.symbolize/1"


def symbolized_lines(result: Symbolized) -> Iterator[str]:
    """The query, the ELF symbol it resolved to, then the frame's annotation lines."""
    resolved = result.resolved
    head = result.query.text
    if resolved.symbol is not None and resolved.link_address is not None:
        offset = resolved.link_address - resolved.symbol.link_address
        shown = shown_name(resolved.symbol.name)
        # A module has no link address a user can look up: its place by section instead.
        where = str(resolved.place) if resolved.place is not None else f"{resolved.link_address:#x}"
        head += f"  = {shown}+{offset:#x} at {where}"
    elif not resolved.candidates:
        head += "  = ??"
    yield head
    yield from resolution_lines(resolved, result.query.frame.symbol)


def symbolized_document(
    records: list[dict[str, Any]],
    path: str,
    build_id: str | None,
    errors: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The whole document from its ``results`` entries (:func:`symbolized_record`, made where
    each query is answered: this process or a worker); ``errors``: (query, message) of the
    queries that failed."""
    document = {
        "schema": SCHEMA,
        "vmlinux": {"path": path, "build_id": build_id},
        "results": records,
    }
    if errors is not None:
        document["errors"] = [error_record(query, message) for query, message in errors]
    return document


def symbolized_record(result: Symbolized) -> dict[str, Any]:
    """One answer: an entry of the document's ``results``, and a line of ``--jsonl``."""
    return {
        "query": result.query.text,
        "resolved": resolved_json(result.resolved),
        "locations": [location_json(loc) for loc in result.resolved.locations],
        "notes": list(result.resolved.notes),
    }


def error_record(query: str, message: str) -> dict[str, Any]:
    """A query that failed: an entry of the document's ``errors``, and a line of ``--jsonl``."""
    return {"query": query, "error": message}
