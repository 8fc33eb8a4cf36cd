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

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator
from functools import partial

from ltosyms.decode.decode import DecodedFrame, DecodedReport, RegisterValue
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
    resolved = decoded.resolved
    return resolution_lines(resolved, decoded.frame.symbol) if resolved is not None else []


def resolution_lines(resolved: ResolvedFrame, printed_name: str | None = None) -> list[str]:
    """Source locations, ambiguity with its evidence, the call site and notes of a frame.
    With ``printed_name`` (the name the log printed), the frame's own function is called by
    it: the ELF name (``try_to_wake_up.llvm.14717294184349261171``) is given once, in a note."""
    lines = []
    elf_name = resolved.symbol.name if resolved.symbol is not None else None

    def own(name: str) -> str:
        return printed_name if printed_name is not None and name == elf_name else name

    if resolved.function_pointer is not None:
        name = shown_name(resolved.function_pointer.name)
        lines.append(f"{INDENT}= {name}+0x0, a function pointer")
    for location in resolved.locations:
        marker = " (inlined)" if location.inlined else ""
        function = shown_name(own(location.function)) if location.function else "??"
        lines.append(f"{INDENT}{_where(location)}  {function}{marker}")
    if resolved.ambiguous:
        lines.append(f"{INDENT}ambiguous: {len(resolved.candidates)} candidates, none chosen:")
        count = len(resolved.candidates)
        places = resolved.candidate_places or (None,) * count
        sources = resolved.candidate_lines or (None,) * count
        units = resolved.candidate_units or (None,) * count
        spans = resolved.candidate_function_lines or (None,) * count
        for candidate, place, source, unit, span in zip(
            resolved.candidates, places, sources, units, spans, strict=True
        ):
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
            compiled = f" in {unit}" if unit is not None else ""
            line = f": {_where(source)}" if source is not None else ""
            function = (
                f"; the function is {span.file or '??'}:{span.first}-{span.last}"
                if span is not None
                else ""
            )
            lines.append(
                f"{INDENT}  {shown_name(symbol.name)} at {where}{size}{compiled}{line}{function}"
            )
        lines.extend(
            f"{INDENT}  evidence: {e.kind.value}: {e.detail} ({e.candidates_before} -> "
            f"{e.candidates_after})"
            for e in resolved.evidence
        )
    if resolved.named_call is not None:
        call = resolved.named_call
        call_point = call.site
        if call_point.symbol is not None and own(call_point.symbol) != call_point.symbol:
            call = dataclasses.replace(
                call, site=dataclasses.replace(call_point, symbol=own(call_point.symbol))
            )
        lines.append(call_line(call))
    elif resolved.call_site is not None:
        site = resolved.call_site
        lines.append(f"{INDENT}call at {site.link_address:#x}: {site.mnemonic} {site.op_str}")
    lines.extend(f"{INDENT}note: {note}" for note in resolved.notes)
    return lines


def register_line(value: RegisterValue) -> str:
    """``RAX ffffffffc0327320 = lkdtm_WARNING [lkdtm]``: a register holding an address of
    the kernel or a module; data named with its section."""
    name = shown_name(value.symbol)
    where = f"{name}+{value.offset:#x}" if value.offset else name
    module = f" [{value.module}]" if value.module is not None else ""
    section = (
        f" ({value.section})"
        if value.section is not None and not value.section.startswith(".text")
        else ""
    )
    return f"{INDENT}{value.register} {value.value:016x} = {where}{module}{section}"


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


class MadeLines:
    """Lines made for records that recur from report to report of one log (a resolved frame
    the decoder hands out again, a ``Code:`` listing decoded from the same bytes): a log that
    prints one crash thousands of times has them made once. The records keyed on are held, so
    that their ids are not reused while kept; emptied when it holds ``KEPT`` entries."""

    KEPT = 4096

    def __init__(self) -> None:
        self._made: dict[tuple[tuple[int, ...], object], tuple[tuple[object, ...], list[str]]]
        self._made = {}

    def lines(
        self, records: tuple[object, ...], detail: object, make: Callable[[], list[str]]
    ) -> list[str]:
        """The lines ``make()`` gives for ``records`` (by identity) and ``detail`` (by value)."""
        key = (tuple(map(id, records)), detail)
        found = self._made.get(key)
        if found is not None:
            return found[1]
        lines = make()
        if len(self._made) >= self.KEPT:
            self._made.clear()
        self._made[key] = (records, lines)
        return lines


def report_annotations(
    decoded: DecodedReport, brief: bool = False, made: MadeLines | None = None
) -> dict[int, list[str]]:
    """Input line number -> lines to print after it, for one report; ``brief`` leaves out the
    call lines (and :func:`hidden_lines` the frames that are no return addresses). ``made``
    keeps lines for the next reports of the log."""
    if made is None:
        made = MadeLines()
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
    # A trace that repeats a frame (a recursion, a stack the unwinder walks twice) repeats its
    # resolved record, as the reports of a sysrq dump do: its lines are made once.
    for frame in decoded.iter_frames():
        resolved = frame.resolved
        if resolved is None:
            continue
        symbol = frame.frame.symbol
        lines = made.lines((resolved,), symbol, partial(resolution_lines, resolved, symbol))
        if brief:
            lines = [line for line in lines if not line.startswith(f"{INDENT}call at ")]
        if lines:
            notes.setdefault(frame.frame.line, []).extend(lines)
    dump = report.main_dump
    if decoded.register_values and dump is not None:
        notes.setdefault(dump.last_line, []).extend(
            register_line(value) for value in decoded.register_values
        )
    code = decoded.code
    if code is not None and report.code is not None:
        lines = []
        listing = code.listing
        if listing is not None:
            lines.extend(
                made.lines(
                    (listing, code.view),
                    code.marker_runtime_address,
                    lambda: [
                        INDENT + line
                        for line in code_listing_lines(
                            listing, code.view, code.marker_runtime_address
                        )
                    ],
                )
            )
        if code.match is not None and code.image is not None:
            lines.append(INDENT + code_match_line(code.match, code.image))
        notes.setdefault(report.code.line, []).extend(lines)
    return notes


def hidden_lines(decoded: DecodedReport) -> set[int]:
    """Input lines ``--brief`` leaves out: ``? `` entries that are no return address (stale
    words of the stack, function pointers)."""
    return {
        frame.frame.line
        for frame in decoded.iter_frames()
        if not frame.frame.reliable
        and frame.resolved is not None
        and frame.resolved.not_return_address
    }


def report_lines(decoded: DecodedReport) -> range:
    """The input lines of one report (``--reports-only``)."""
    return range(decoded.report.first_line, decoded.report.last_line + 1)


# C0 controls but tab, DEL and C1 controls: a serial console's `ESC c` (reset) or `ESC[2J`
# (clear screen), or a stray CSI, would act on the reader's terminal.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def visible(line: str) -> str:
    """``line`` with control characters written out (``\\x1b``), never sent raw."""
    if line.isascii() and line.isprintable():
        return line  # most lines: no control character (a tab is not printable: it is checked)
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", line)


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
    lines: Iterable[str],
    annotations: dict[int, list[str]],
    shown: Callable[[int], bool] | None = None,
    note: Callable[[str], str] | None = None,
) -> list[str]:
    """The input lines, each followed by its annotations, as one list (a log's stretch at a
    time: one loop per line, nothing more); ``note`` marks an annotation for a terminal (a
    color) so that the two can be told apart; ``shown``: only these input lines (and their
    annotations)."""
    out: list[str] = []
    append, extend = out.append, out.extend
    get = annotations.get
    for number, line in enumerate(lines, start=1):
        if shown is not None and not shown(number):
            continue
        # visible(), its common case written out: this runs once per line of the log.
        append(line if line.isascii() and line.isprintable() else visible(line))
        notes = get(number)
        if notes:
            extend(notes if note is None else map(note, notes))
    return out


def render_log_decode_stacktrace(
    lines: Iterable[str],
    annotations: dict[int, str],
    shown: Callable[[int], bool] | None = None,
) -> Iterator[str]:
    for number, raw_line in enumerate(lines, start=1):
        if shown is not None and not shown(number):
            continue
        line = visible(raw_line)
        code = annotations.get(number)
        if code is not None and "Code:" in line and _FRAME_TEXT.search(line) is None:
            # decode_stacktrace.sh hands a `Code:` line to decodecode, which echoes it as
            # `read` and an unquoted `echo` leave it (blanks collapsed), then disassembles.
            yield " ".join(line.split())
            yield from code.split("\n") if code else ()
            continue
        if _SCRIPT_FRAME.search(line) is None and _KERNEL_ADDRESS.search(line) is None:
            yield line
            continue
        yield script_frame_line(line, code)


# The lines decode_stacktrace.sh (6.1) hands to handle_line(): a `[<address>]` or a
# `name+0xOFF/0xSIZE` (its main loop's two patterns).
_KERNEL_ADDRESS = re.compile(r"\[<([^]]+)>\]")
_SCRIPT_FRAME = re.compile(r"[^+ ]+\+0x[0-9a-f]+/0x[0-9a-f]+")
_BUILD_ID_END = re.compile(r"^[0-9a-f]+\]")
_MODULE_WORD = re.compile(r"\[([^]]+)\]")


def script_frame_line(line: str, code: str | None) -> str:
    """A frame line as the 6.1 script's handle_line() prints it: the words of the line (`read
    -a`) without `[<address>]` ones, a `[ 4.38]` timestamp padded as ``printf "[%13s"``, the
    last word decoded as ``name (file:line ...)`` when ``code`` is given, and the module's name
    alone after it (``echo "${words[@]}" "$symbol $module"``: ``... ) lkdtm``, or a trailing
    blank for the vmlinux)."""
    words = line.split()
    kept: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        if _KERNEL_ADDRESS.search(word):
            index += 1
            continue
        if word == "[" and index + 1 < len(words) and words[index + 1].endswith("]"):
            kept.append(f"[{words[index + 1]:>13}")
            index += 2
            continue
        kept.append(word)
        index += 1
    if len(kept) >= 2 and _BUILD_ID_END.match(kept[-1]):
        kept[-2:] = [f"{kept[-2]} {kept[-1]}"]
    module = ""
    if kept and _MODULE_WORD.search(kept[-1]) and len(kept) >= 2:
        module = kept.pop().strip("[]").split(" ")[0]
    symbol = kept.pop() if kept else ""
    if code is not None:
        match = _FRAME_TEXT.search(symbol)
        if match is not None:
            symbol = f"{symbol[: match.start()]}{match.group('name')} ({code})"
    return " ".join([*kept, f"{symbol} {module}"])
