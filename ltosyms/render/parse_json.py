"""Parsed reports as the ``ltosyms.parse/1`` JSON document.

``frame_to_json`` and ``report_to_json`` are the building blocks other commands extend (``decode
--json`` adds resolution fields to the same frame and report objects). Addresses and register
values are hex strings (``"0xffffffff81234567"``): JSON numbers lose precision above 2**53.
A stack section the log did not show (IP lines, architectures without markers) is ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from ltosyms.oops.records import (
    CodeBytes,
    Frame,
    IpLine,
    RegisterDump,
    Report,
    StackSection,
    Trace,
)

SCHEMA = "ltosyms.parse/1"


def hex_or_none(value: int | None) -> str | None:
    """Addresses as JSON strings: numbers above 2**53 lose precision in JSON readers."""
    return None if value is None else f"{value:#x}"


def frame_to_json(frame: Frame) -> dict[str, Any]:
    return {
        "line": frame.line,
        "symbol": frame.symbol,
        "offset": frame.offset,
        "size": frame.kallsyms_size,
        "module": frame.module,
        "module_build_id": frame.module_build_id,
        "reliable": frame.reliable,
        "exact_ip": frame.exact_ip,
        "section": None if frame.section is StackSection.UNKNOWN else frame.section.value,
        "address": hex_or_none(frame.runtime_address),
        "marker": frame.marker,
        "source": None
        if frame.source is None
        else {"file": frame.source.file, "line": frame.source.line, "column": frame.source.column},
        "inline": frame.inline,
        "text": frame.raw_text,
    }


def trace_to_json(trace: Trace) -> dict[str, Any]:
    return {
        "kind": trace.kind,
        "title": trace.title,
        "first_line": trace.first_line,
        "last_line": trace.last_line,
        "comm": trace.comm,
        "pid": trace.pid,
        "task_state": trace.task_state,
        "frames": [frame_to_json(frame) for frame in trace.frames],
        "frames_not_kept": trace.frames_not_kept,
    }


def code_to_json(code: CodeBytes | None) -> dict[str, Any] | None:
    if code is None:
        return None
    return {
        "line": code.line,
        "arch": code.arch,
        "bytes": code.data.hex(),
        "marker_offset": code.marker_offset,
        "token_size": code.token_size,
        "unavailable": code.unavailable,
        "unavailable_address": hex_or_none(code.unavailable_address),
    }


def ip_line_to_json(ip: IpLine) -> dict[str, Any]:
    return {
        "line": ip.line,
        "register": ip.register,
        "segment": ip.segment,
        "user_mode": ip.user_mode,
        "address": hex_or_none(ip.runtime_address),
        "kernel_frame": ip.frame is not None,
        "text": ip.raw_text,
    }


def registers_to_json(registers: Iterable[tuple[str, int]]) -> dict[str, str]:
    return {name: f"{value:#x}" for name, value in registers}


def register_dump_to_json(dump: RegisterDump) -> dict[str, Any]:
    return {
        "first_line": dump.first_line,
        "last_line": dump.last_line,
        "ip_line": None if dump.ip is None else dump.ip.line,
        "user_mode": dump.user_mode,
        "inside_trace": dump.inside_trace,
        "registers": registers_to_json(dump.registers),
        "code": code_to_json(dump.code),
    }


def report_to_json(report: Report) -> dict[str, Any]:
    return {
        "kind": report.kind.value,
        "crash": report.is_crash,
        "title": report.title,
        "first_line": report.first_line,
        "last_line": report.last_line,
        "caller": report.caller,
        "cpu": report.cpu,
        "pid": report.pid,
        "comm": report.comm,
        "release": report.release,
        "kernel_version": report.kernel_version,
        "taint": report.taint,
        "build_id": report.build_id,
        "hardware": report.hardware,
        "modules_linked_in": list(report.modules_linked_in),
        "arch": report.arch,
        "kaslr_offset": hex_or_none(report.kaslr_offset),
        "panic_message": report.panic_message,
        "ip_lines": [ip_line_to_json(ip) for ip in report.ip_lines],
        "registers": registers_to_json(report.registers),
        "code": code_to_json(report.code),
        "register_dumps": [register_dump_to_json(dump) for dump in report.register_dumps],
        "traces": [trace_to_json(trace) for trace in report.traces],
    }


def parse_document_chunks(source: str, reports: Iterable[Report]) -> Iterator[str]:
    """The ``ltosyms.parse/1`` document in pieces, one report at a time, so that a huge log
    never needs all its reports in memory. Joined, the pieces are one JSON object."""
    yield f'{{\n "schema": {json.dumps(SCHEMA)},\n "source": {json.dumps(source)},\n'
    yield ' "reports": ['
    count = 0
    for report in reports:
        body = json.dumps(report_to_json(report), indent=1).replace("\n", "\n  ")
        yield ("," if count else "") + "\n  " + body
        count += 1
    yield ("\n ]" if count else "]") + "\n}\n"


def parse_document(source: str, reports: Iterable[Report]) -> dict[str, Any]:
    """The whole ``ltosyms.parse/1`` document as one dict."""
    return {
        "schema": SCHEMA,
        "source": source,
        "reports": [report_to_json(report) for report in reports],
    }
