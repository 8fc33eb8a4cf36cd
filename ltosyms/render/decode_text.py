"""Decoded reports as text: the original log with each frame's decoding under it.

Two layouts:

* ``annotated`` (default): every input line is kept as it was; under each frame line come its
  source locations (innermost first, inlined ones marked), the call site, and notes; under a
  ``Code:`` line its listing.
* ``decode-stacktrace``: scripts/decode_stacktrace.sh's line format, for scripts that parse it:
  the frame line gets `` file:line`` appended, and every inlined entry is a line of its own
  before it, ``name file:line [inline]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from ltosyms.decode.decode import DecodedFrame, DecodedReport
from ltosyms.decode.frames import ResolvedFrame
from ltosyms.disasm.targets import NamedCall, TargetKind
from ltosyms.disasm.view import ViewSource
from ltosyms.dwarf import SourceLocation
from ltosyms.names.rust import demangle
from ltosyms.render.code_listing import code_listing_lines, code_match_line, decodecode_lines

INDENT = "    "


def _where(location: SourceLocation) -> str:
    if location.file is None:
        return "??"
    if location.line is None:
        return f"{location.file}:?"
    column = f":{location.column}" if location.column else ""
    return f"{location.file}:{location.line}{column}"


def shown_name(name: str) -> str:
    """A symbol or function name as people read it: Rust names demangled (the ELF name is
    in the JSON output)."""
    return demangle(name) or name


def frame_lines(decoded: DecodedFrame) -> list[str]:
    """The annotation lines printed under one frame."""
    return resolution_lines(decoded.resolved) if decoded.resolved is not None else []


def resolution_lines(resolved: ResolvedFrame) -> list[str]:
    """Source locations, ambiguity with its evidence, the call site and notes of a frame."""
    lines = []
    if resolved.function_pointer is not None:
        name = shown_name(resolved.function_pointer.name)
        lines.append(f"{INDENT}= {name}+0x0, a function pointer")
    for location in resolved.locations:
        marker = " (inlined)" if location.inlined else ""
        function = shown_name(location.function) if location.function else "??"
        lines.append(f"{INDENT}{_where(location)}  {function}{marker}")
    if resolved.ambiguous:
        lines.append(f"{INDENT}ambiguous: {len(resolved.candidates)} candidates, none chosen:")
        places = resolved.candidate_places or (None,) * len(resolved.candidates)
        for candidate, place in zip(resolved.candidates, places, strict=True):
            symbol = candidate.symbol
            # A module's candidate by section: its link address is ltosyms' own layout.
            start = symbol.link_address
            where = (
                f"{start:#x}"
                if place is None
                else f"{place.section}+{place.offset - (candidate.link_address - start):#x}"
            )
            size = (
                f" (kallsyms size {symbol.kallsyms_size:#x})"
                if symbol.kallsyms_size is not None
                else ""
            )
            lines.append(f"{INDENT}  {shown_name(symbol.name)} at {where}{size}")
        lines.extend(
            f"{INDENT}  evidence: {e.kind.value}: {e.detail} ({e.candidates_before} -> "
            f"{e.candidates_after})"
            for e in resolved.evidence
        )
    if resolved.named_call is not None:
        lines.append(call_line(resolved.named_call))
    elif resolved.call_site is not None:
        site = resolved.call_site
        lines.append(f"{INDENT}call at {site.link_address:#x}: {site.mnemonic} {site.op_str}")
    lines.extend(f"{INDENT}note: {note}" for note in resolved.notes)
    return lines


def call_line(call: NamedCall) -> str:
    """``call at schedule_timeout+0x8f: call schedule``: the call a return address belongs to,
    objdump style (a static call as the source writes it, ``static_call(name)``)."""
    return f"{INDENT}call at {call.site}: {shown_call(call)}"


def shown_call(call: NamedCall) -> str:
    target = call.target
    if target.kind is TargetKind.DIRECT and target.symbol is not None and not target.alternatives:
        name = shown_name(target.symbol)
        return (
            f"{call.mnemonic} {name}+{target.offset:#x}"
            if target.offset
            else f"{call.mnemonic} {name}"
        )
    return str(call)


def report_annotations(decoded: DecodedReport) -> dict[int, list[str]]:
    """Input line number -> lines to print after it, for one report."""
    notes: dict[int, list[str]] = {}
    report = decoded.report
    if decoded.warnings:
        notes.setdefault(report.first_line, []).extend(
            f"{INDENT}ltosyms: warning: {w}" for w in decoded.warnings
        )
    if decoded.kaslr_offset is not None:
        notes.setdefault(report.first_line, []).append(
            f"{INDENT}ltosyms: KASLR offset {decoded.kaslr_offset:#x}"
        )
    for frame in decoded.iter_frames():
        lines = frame_lines(frame)
        if lines:
            notes.setdefault(frame.frame.line, []).extend(lines)
    code = decoded.code
    if code is not None and report.code is not None:
        lines = []
        if code.listing is not None:
            lines.extend(
                INDENT + line
                for line in code_listing_lines(code.listing, code.view, code.marker_runtime_address)
            )
        if code.match is not None and code.image is not None:
            lines.append(INDENT + code_match_line(code.match, code.image))
        notes.setdefault(report.code.line, []).extend(lines)
    return notes


# A printed frame as decode_stacktrace.sh finds it: `name+0xOFF/0xSIZE`, optionally a module.
_FRAME_TEXT = re.compile(
    r"(?P<name>[^\s+]+)\+0x[0-9a-f]+/0x[0-9a-f]+(?P<module> \[[^\]]+\])?(?P<rest>.*)$"
)


def decode_stacktrace_annotations(decoded: DecodedReport) -> dict[int, str]:
    """Input line -> replacement text for its frame, as scripts/decode_stacktrace.sh (6.1)
    prints it: ``name (file:line file:line ...)``, innermost location first, offset dropped;
    for the report's ``Code:`` line, the lines its decodecode call prints after the echoed
    line (see :func:`render_log_decode_stacktrace`)."""
    result: dict[int, str] = {}
    for frame in decoded.iter_frames():
        resolved = frame.resolved
        if resolved is None or not resolved.locations:
            continue
        result[frame.frame.line] = " ".join(_where_plain(loc) for loc in resolved.locations)
    code, report_code = decoded.code, decoded.report.code
    if (
        code is not None
        and code.listing is not None
        and report_code is not None
        and (code.view is None or code.view.source is ViewSource.LOG)
    ):
        result[report_code.line] = "\n".join(decodecode_lines(code.listing, code.view))
    return result


def _where_plain(location: SourceLocation) -> str:
    if location.file is None:
        return "??:?"
    return f"{location.file}:{location.line if location.line is not None else '?'}"


def render_log(
    lines: Iterable[str], annotations: dict[int, list[str]]
) -> Iterator[tuple[str, bool]]:
    """The input lines with annotations after the lines they belong to, as (text, True for
    an annotation) so that a terminal can show the two apart."""
    for number, line in enumerate(lines, start=1):
        yield line, False
        for note in annotations.get(number, ()):
            yield note, True


def render_log_decode_stacktrace(
    lines: Iterable[str], annotations: dict[int, str]
) -> Iterator[str]:
    for number, line in enumerate(lines, start=1):
        code = annotations.get(number)
        if code is not None and "Code:" in line and _FRAME_TEXT.search(line) is None:
            # decode_stacktrace.sh hands a `Code:` line to decodecode, which echoes it as
            # `read` and an unquoted `echo` leave it (blanks collapsed), then disassembles.
            yield " ".join(line.split())
            yield from code.split("\n") if code else ()
            continue
        match = _FRAME_TEXT.search(line) if code is not None else None
        if match is None:
            yield line
            continue
        module = match.group("module") or ""
        yield f"{line[: match.start()]}{match.group('name')} ({code}){module}{match.group('rest')}"
