"""Decoded reports as the ``ltosyms.decode/1`` JSON document (a public, stable interface).

Every frame keeps the parser's fields (``line``, ``symbol``, ``offset``, ``size``, ``module``,
``reliable``, ``exact_ip``, ``section``) and adds ``resolved``, ``locations`` and ``notes``.
Addresses are strings ``"0x..."``: link-time addresses unless the key says ``runtime``.
"""

from __future__ import annotations

from typing import Any

from ltosyms.decode.decode import DecodedFrame, DecodedReport, frame_key
from ltosyms.decode.frames import ResolvedFrame
from ltosyms.disasm.targets import NamedCall
from ltosyms.dwarf import SourceLocation
from ltosyms.elf.kernel import LoadedImage
from ltosyms.names.rust import demangle
from ltosyms.render.code_listing import code_listing_json
from ltosyms.render.parse_json import frame_to_json, hex_or_none

SCHEMA = "ltosyms.decode/1"


def location_json(location: SourceLocation) -> dict[str, Any]:
    document = {
        "function": location.function,
        "file": location.file,
        "full_path": location.full_path,
        "line": location.line,
        "column": location.column,
        "inlined": location.inlined,
    }
    return _with_demangled(document, location.function)


def _with_demangled(document: dict[str, Any], name: str | None) -> dict[str, Any]:
    """Adds ``demangled`` next to a Rust symbol or function name (the name stays the ELF
    one); other names get no such field."""
    demangled = demangle(name) if name else None
    if demangled is not None:
        document["demangled"] = demangled
    return document


def resolved_json(
    resolved: ResolvedFrame, runtime_address: int | None = None
) -> dict[str, Any] | None:
    """``resolved`` of a frame. Link addresses (``address``, ``symbol_address``,
    ``call_site``, ``lookup_address``) are null in a module: a module has none a user can
    look up; ``section`` and ``section_offset`` say where the frame is instead."""
    if not resolved.candidates and resolved.symbol is None:
        return None
    site = resolved.call_site
    link = _link_address if resolved.module is None else _no_link_address
    place = resolved.place
    places = resolved.candidate_places or (None,) * len(resolved.candidates)
    sources = resolved.candidate_lines or (None,) * len(resolved.candidates)
    units = resolved.candidate_units or (None,) * len(resolved.candidates)
    spans = resolved.candidate_function_lines or (None,) * len(resolved.candidates)
    document = {
        "symbol": resolved.symbol.name if resolved.symbol is not None else None,
        "address": link(resolved.link_address),
        "symbol_address": link(resolved.symbol.link_address) if resolved.symbol else None,
        "kallsyms_size": resolved.symbol.kallsyms_size if resolved.symbol else None,
        "section": place.section if place is not None else None,
        "section_offset": place.offset if place is not None else None,
        "runtime_address": hex_or_none(runtime_address),
        "call_site": link(site.link_address) if site is not None else None,
        "call_instruction": _call_instruction(resolved),
        "call_site_symbol": _code_point_json(resolved.named_call),
        "call_target": _call_target_json(resolved.named_call, resolved.module is not None),
        "function_pointer": _function_pointer_json(resolved),
        "lookup_address": link(resolved.lookup_address),
        "not_return_address": resolved.not_return_address,
        "ambiguous": resolved.ambiguous,
        "candidates": [
            _with_demangled(
                {
                    "symbol": c.symbol.name,
                    "address": link(c.link_address),
                    "symbol_address": link(c.symbol.link_address),
                    "kallsyms_size": c.symbol.kallsyms_size,
                    "section": c_place.section if c_place is not None else None,
                    "section_offset": c_place.offset if c_place is not None else None,
                    "file": source.file if source is not None else None,
                    "line": source.line if source is not None else None,
                    "unit_file": unit,
                    "function_lines": None
                    if span is None
                    else {"file": span.file, "first": span.first, "last": span.last},
                },
                c.symbol.name,
            )
            for c, c_place, source, unit, span in zip(
                resolved.candidates, places, sources, units, spans, strict=True
            )
        ],
        "evidence": [
            {
                "kind": e.kind.value,
                "detail": e.detail,
                "candidates_before": e.candidates_before,
                "candidates_after": e.candidates_after,
            }
            for e in resolved.evidence
        ],
    }
    return _with_demangled(document, resolved.symbol.name if resolved.symbol else None)


def _link_address(address: int | None) -> str | None:
    return hex_or_none(address)


def _no_link_address(address: int | None) -> None:
    return None


def _function_pointer_json(resolved: ResolvedFrame) -> dict[str, Any] | None:
    """``resolved.function_pointer``: the function a ``? f+size/size`` slot points to (its
    start), ``address`` its link address (null in a module)."""
    symbol = resolved.function_pointer
    if symbol is None:
        return None
    address = None if resolved.module is not None else hex_or_none(symbol.link_address)
    return _with_demangled({"symbol": symbol.name, "address": address}, symbol.name)


def _call_instruction(resolved: ResolvedFrame) -> str | None:
    """The call as capstone prints it; in a module, named (its operand would be an address of
    ltosyms' own section layout, or the unrelocated zero displacement)."""
    site = resolved.call_site
    if site is None:
        return None
    if resolved.module is not None and resolved.named_call is not None:
        return str(resolved.named_call)
    return f"{site.mnemonic} {site.op_str}".strip()


def _code_point_json(call: NamedCall | None) -> dict[str, Any] | None:
    """Where the call is, by symbol (``section`` instead where no symbol covers it)."""
    if call is None:
        return None
    site = call.site
    return {"symbol": site.symbol, "offset": site.offset, "section": site.section}


def _call_target_json(call: NamedCall | None, in_module: bool) -> dict[str, Any] | None:
    """``resolved.call_target``: the function a direct call enters (``symbol``, ``offset``),
    the thunk or static-call trampoline called (``kind`` says which), or for an indirect call
    ``symbol`` null and the ``operand``; null when no call ends at the return address.
    ``address`` is the target's link address in a vmlinux (null in a module: modules have
    none a user could look up)."""
    if call is None:
        return None
    target = call.target
    return {
        "symbol": target.symbol,
        "offset": target.offset,
        "kind": target.kind.value,
        "address": None if in_module else hex_or_none(target.link_address),
        "operand": target.operand,
        "static_call": target.static_call_name,
        "alternatives": list(target.alternatives),
    }


def frame_json(decoded: DecodedFrame, trace_index: int | None) -> dict[str, Any]:
    """The parser's frame object (``ltosyms.parse/1``) plus what decoding found."""
    resolved = decoded.resolved
    return frame_to_json(decoded.frame) | {
        "trace": trace_index,
        "runtime_address": hex_or_none(decoded.frame.runtime_address),
        "resolved": (
            resolved_json(resolved, decoded.runtime_address) if resolved is not None else None
        ),
        "locations": [location_json(loc) for loc in resolved.locations] if resolved else [],
        "notes": list(resolved.notes) if resolved else [],
    }


def report_json(decoded: DecodedReport) -> dict[str, Any]:
    report = decoded.report
    # A RIP line is the report's IP line and often a trace's first entry too: listed once,
    # with its trace.
    by_line: dict[tuple[int, str], dict[str, Any]] = {}
    for f in decoded.ip_frames:
        by_line[frame_key(f.frame)] = frame_json(f, None)
    for index, trace in enumerate(decoded.traces):
        for f in trace.frames:
            by_line[frame_key(f.frame)] = frame_json(f, index)
    frames = sorted(by_line.values(), key=lambda f: int(f["line"]))
    code = decoded.code
    return {
        "kind": report.kind.value,
        "title": report.title,
        "first_line": report.first_line,
        "last_line": report.last_line,
        "release": report.release,
        "build_id": report.build_id,
        "kaslr_offset": hex_or_none(decoded.kaslr_offset),
        "code": (
            code_listing_json(
                code.listing,
                code.match,
                code.view,
                code.marker_runtime_address,
                in_module=code.image not in (None, "vmlinux"),
            )
            | {"image": code.image}
            if code is not None and code.listing is not None
            else None
        ),
        "register_values": [
            _with_demangled(
                {
                    "register": value.register,
                    "value": f"{value.value:#x}",
                    "symbol": value.symbol,
                    "offset": value.offset,
                    "module": value.module,
                    "section": value.section,
                },
                value.symbol,
            )
            for value in decoded.register_values
        ],
        "mismatch": decoded.mismatch,
        "warnings": list(decoded.warnings),
        "traces": [
            {
                "kind": t.trace.kind,
                "title": t.trace.title,
                "first_line": t.trace.first_line,
                "frames_not_kept": t.trace.frames_not_kept,
            }
            for t in decoded.traces
        ],
        "frames": frames,
    }


def decode_document(vmlinux: LoadedImage, reports: list[DecodedReport]) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "vmlinux": {"path": str(vmlinux.image.path), "build_id": vmlinux.build_id},
        "reports": [report_json(r) for r in reports],
    }
