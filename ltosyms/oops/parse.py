"""Console text -> reports, streaming: ``iter_reports(source)`` and ``parse_text(text)``.

The parser reads numbered lines (:mod:`ltosyms.oops.lines`), classifies each kernel message
with the grammars of :mod:`ltosyms.oops.frames` and :mod:`ltosyms.oops.headers`, and routes it
to the report open in its *context*: the printk caller id (``T123``, ``C1``) when the log has
them, so that lines of other CPUs and tasks printed in between are never glued into a report.
A report whose caller id is known takes only lines with that id or with none.

A report ends when a new header starts one in its context, at ``---[ end Kernel panic``, after
a closing marker (``---[ end trace ]---``, a sanitizer's ``=====`` banner) once the lines that
still belong to it (the register re-dump x86 prints after the marker, ``Kernel panic``,
``Kernel Offset``) are over, after a long stretch with nothing of it, once it spans
:data:`~ltosyms.limits.MAX_REPORT_LINES` lines or :data:`~ltosyms.limits.MAX_REPORT_CHARS`
characters of input, and at the end of input. Memory is proportional to the open reports, and
they are bounded, whatever the input. :func:`iter_log_stretches` hands out the lines too, each
stretch once no report still to come can reach it, for a consumer that prints the log with
what it found (``ltosyms decode``) in one pass.

Inside a report, traces are built from the lines that name them (``Call Trace:``, ``task:...``,
``Allocated by task 5:``, any title line right before an entry) and hold every frame in input
order, IP lines before the walk included (``WARNING: ... at``, ``RIP:``, ``pc :``/``lr :``) so
that a trace reads innermost first. The parser never opens an ELF and never raises on bad input.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ltosyms import limits
from ltosyms.oops import frames as grammar
from ltosyms.oops.builders import ReportBuilder
from ltosyms.oops.frames import FrameText, IpText
from ltosyms.oops.headers import (
    BANNER,
    BUILD_ID,
    CALL_TRACE,
    CLOSING_LINES,
    CPU_LINE,
    END_PANIC,
    END_TRACE,
    HARDWARE_LINE,
    HEADER_STARTS,
    KERNEL_OFFSET,
    MODULES_LINE,
    OLD_TASK_LINE,
    RELEASE_TAINT_LINE,
    SECTION_MARKER,
    TAINT_LINE,
    TASK_LINE,
    HeaderRule,
    is_trace_title,
    match_cpu_line,
    match_header,
    trace_kind,
)
from ltosyms.oops.lines import (
    LogLine,
    LogSource,
    PrefixSplitter,
    iter_physical_blocks,
    split_glued,
)
from ltosyms.oops.records import (
    Frame,
    FrameRole,
    IpLine,
    Report,
    ReportKind,
    SourceAnnotation,
    StackSection,
    make_frame,
)

log = logging.getLogger(__name__)

# A report that received nothing for this many input lines is complete: it is handed out,
# which bounds both memory and how long a consumer waits for it.
IDLE_LINES = 1000
_IDLE_CHECK_EVERY = 256
# Contexts remembered for "the line before" (titles of header-less dumps); reset beyond this.
_MAX_REMEMBERED_CONTEXTS = 4096

_SANITIZERS = frozenset(
    {ReportKind.KASAN, ReportKind.UBSAN, ReportKind.KCSAN, ReportKind.KMSAN, ReportKind.KFENCE}
)
_SECTIONS = {
    "TASK": StackSection.TASK,
    "IRQ": StackSection.IRQ,
    "SOFTIRQ": StackSection.SOFTIRQ,
    "NMI": StackSection.NMI,
}
_ARCH_BY_IP_REGISTER = {
    "RIP": "x86_64",
    "EIP": "i386",
    "pc": "aarch64",
    "lr": "aarch64",
    "PC": "arm",
    "LR": "arm",
    "epc": "riscv64",
    "ra": "riscv64",
    "NIP": "powerpc",
    "PSW": "s390",
}
_ARCH_BY_REGISTER = {
    "RAX": "x86_64",
    "EAX": "i386",
    "x29": "aarch64",
    "x0": "aarch64",
    "r10": "arm",
    "ip": "arm",
    "gp": "riscv64",
}
_FRAME_START = frozenset("?[(0")
_HEX_DIGITS = frozenset("0123456789abcdef")
# How the report lines that carry no code address start (see _on_other).
_OTHER_STARTS = (
    END_TRACE,
    END_PANIC,
    "==========",
    "Kernel Offset:",
    "Modules linked in:",
    "Hardware name:",
    "task:",
    "Tainted:",
    "Not tainted",
    *CLOSING_LINES,
)
_LR_REGISTERS = frozenset({"lr", "LR", "ra"})
# Architectures whose unwinder, started from a pt_regs, prints its pc as the first entry
# (arm64 dump_backtrace, riscv walk_stackframe).
_PC_REGISTERS = frozenset({"pc", "epc"})
_RETURN_ADDRESS = FrameRole.RETURN_ADDRESS
_UNKNOWN = StackSection.UNKNOWN


class OopsParser:
    """The streaming parser. Feed :class:`LogLine` objects, collect finished reports.

    Most callers want :func:`iter_reports`; this class is public for callers that already have
    lines (an editor integration, a log follower).
    """

    def __init__(self) -> None:
        self._open: dict[str | None, ReportBuilder] = {}
        self._last: ReportBuilder | None = None
        self._finished: list[tuple[int, int, Report]] = []
        self._sequence = 0
        # The previous line of each context when it was not a report line (else None).
        self._previous: dict[str | None, LogLine | None] = {}
        self._next_idle_check = _IDLE_CHECK_EVERY
        # Set when a report closes: only then can finished reports become ready.
        self._closed_since_pop = False
        self._cut_reports = 0  # reports handed out at MAX_REPORT_LINES or _CHARS
        self._consumed = 0  # characters of input read (line ends counted as one)

    # --- public ------------------------------------------------------------------------

    def run(self, physical_lines: Iterable[str]) -> Iterator[Report]:
        """Parse raw physical lines (terminators removed), yielding reports as they finish."""
        return self.run_blocks(_in_blocks(physical_lines))

    def run_blocks(self, blocks: Iterable[list[str]]) -> Iterator[Report]:
        """:meth:`run` for physical lines that come a list at a time
        (:func:`~ltosyms.oops.lines.iter_physical_blocks`)."""
        for event in self.events(blocks, 0):
            if not isinstance(event, int):
                yield event

    def events(
        self,
        blocks: Iterable[list[str]],
        every: int,
        keep: Callable[[list[str]], object] | None = None,
    ) -> Iterator[Report | int]:
        """:meth:`run_blocks`, also yielding, before each ``every``-th line (never for 0), the
        number of the first line a report still to come may reach (:meth:`settled_before`);
        ``keep(lines)`` is called with each list of physical lines as it is read.

        The loop is :meth:`feed` written out, and it handles the most common line itself: a
        plain trace entry that continues the trace being read (``" ? name+0xOFF/0xSIZE
        [module]"``), which is most of a sysrq-t dump.
        """
        next_tick = every if every > 0 else -1
        split = PrefixSplitter().split
        feed = self._take  # the characters of a line are counted once, below
        dispatch = self._dispatch
        plain_frame = _PLAIN_FRAME.match
        open_reports = self._open
        previous = self._previous
        # Characters read, in a local: the common trace entry below never needs the count,
        # so self._consumed is brought up to date only before what may open or close a report.
        consumed = self._consumed
        lines = itertools.chain.from_iterable(blocks if keep is None else _kept(blocks, keep))
        for number, raw in enumerate(lines, start=1):
            if number == next_tick:
                next_tick += every
                yield self.settled_before(number)
            consumed += len(raw) + 1
            # Every line counts towards a report going quiet, blank and foreign ones too: a
            # flood of empty lines ends the report before it as any other text would.
            if number >= self._next_idle_check:
                self._next_idle_check = number + _IDLE_CHECK_EVERY
                self._consumed = consumed
                self._close_idle(number)
                if self._closed_since_pop:
                    yield from self.pop_finished()
            if not raw:
                continue  # an empty line is no report line (as a blank one, below)
            line = split(number, raw)
            text = line.text
            if "] " in text:
                parts = split_glued(line)
                if parts is not None:
                    self._consumed = consumed
                    feed(parts[0])
                    feed(parts[1])
                    if self._closed_since_pop:
                        yield from self.pop_finished()
                    continue
            # The body of feed(), inline: this loop runs once per input line.
            if line.foreign:
                continue
            stripped = text.strip()
            if not stripped:
                continue
            context = line.caller
            report = (
                self._last
                if context is None
                else open_reports.get(context) or open_reports.get(None)
            )
            if "+0x" in stripped and report is not None:
                trace = report.trace
                fast = plain_frame(stripped)
                if (
                    fast is not None
                    and trace is not None
                    and not trace.closed
                    and trace.pc_key is None
                    and report.title_candidate is None
                    and not report.closing
                ):
                    if trace.full:
                        trace.frames_not_kept += 1
                    else:
                        unreliable, symbol, offset, size, module, build_id = fast.groups()
                        trace.frames.append(
                            make_frame(
                                line=number,
                                raw_text=text.rstrip(),
                                role=_RETURN_ADDRESS,
                                section=trace.sections[-1] if trace.sections else _UNKNOWN,
                                reliable=unreliable is None,
                                symbol=symbol,
                                offset=int(offset, 16),
                                kallsyms_size=int(size, 16),
                                module=module,
                                module_build_id=build_id,
                                runtime_address=None,
                                marker=None,
                                source=None,
                                inline=False,
                            )
                        )
                    trace.stack_frames += 1
                    trace.last_line = number
                    report.confirmed = True
                    report.dump_open = False
                    report.last_line = number
                    report.last_activity = number
                    previous[context] = None
                    continue
            self._consumed = consumed
            recognized = dispatch(line, stripped, context, report)
            if not (line.bare and not recognized):
                if len(previous) > _MAX_REMEMBERED_CONTEXTS:
                    previous.clear()
                previous[context] = None if recognized else line
            if self._closed_since_pop:
                yield from self.pop_finished()
        self._consumed = consumed
        self.finish()
        yield from self.pop_finished()

    def feed(self, line: LogLine) -> None:
        """Take one line; reports it completes go to :meth:`pop_finished`."""
        self._consumed += len(line.text) + 1
        self._take(line)

    def _take(self, line: LogLine) -> None:
        number = line.number
        if number >= self._next_idle_check:  # every line counts, as in events()
            self._next_idle_check = number + _IDLE_CHECK_EVERY
            self._close_idle(number)
        if line.foreign:
            return
        text = line.text.strip()
        if not text:
            return
        context = line.caller
        # Lines without a caller id go to the report read last; others to their own context's
        # report, or to one whose caller is unknown.
        report = self._last if context is None else self._open.get(context) or self._open.get(None)
        recognized = self._dispatch(line, text, context, report)
        if line.bare and not recognized:
            return
        if len(self._previous) > _MAX_REMEMBERED_CONTEXTS:
            self._previous.clear()
        self._previous[context] = None if recognized else line

    def finish(self) -> None:
        """End of input: every open report is complete."""
        for report in list(self._open.values()):
            self._close(report)
        if self._cut_reports > 1:
            log.warning(
                "%d reports ran past %d lines or %d characters and were cut there",
                self._cut_reports,
                limits.MAX_REPORT_LINES,
                limits.MAX_REPORT_CHARS,
            )

    def settled_before(self, number: int) -> int:
        """The first line a report not yet handed out may still reach, ``number`` (the next
        line to read) at most: the first line of an open or finished report, or a line
        remembered as the title of a header-less trace that may yet start in its context
        (for IDLE_LINES lines, see _header_less_title)."""
        first = number
        for report in self._open.values():
            first = min(first, report.first_line)
        if self._finished:
            first = min(first, self._finished[0][0])
        for remembered in self._previous.values():
            if remembered is not None and number - remembered.number <= IDLE_LINES:
                first = min(first, remembered.number)
        return first

    @property
    def has_finished(self) -> bool:
        return self._closed_since_pop

    def pop_finished(self) -> Iterator[Report]:
        """Finished reports that no open report precedes, in input order."""
        self._closed_since_pop = False
        if not self._finished:
            return
        first_open = min((r.first_line for r in self._open.values()), default=None)
        while self._finished and (first_open is None or self._finished[0][0] < first_open):
            yield heapq.heappop(self._finished)[2]

    # --- routing -------------------------------------------------------------------------

    def _open_report(
        self,
        kind: ReportKind,
        title: str,
        first_line: int,
        context: str | None,
        *,
        weak: bool = False,
    ) -> ReportBuilder:
        existing = self._open.get(context)
        if existing is not None:
            self._close(existing)
        report = ReportBuilder(kind, title, first_line, context, weak=weak)
        report.first_char = self._consumed
        self._open[context] = report
        self._last = report
        return report

    def _close(self, report: ReportBuilder) -> None:
        if self._open.get(report.context) is report:
            del self._open[report.context]
        if self._last is report:
            self._last = None
        if report.weak and not report.confirmed:
            return
        self._closed_since_pop = True
        self._sequence += 1
        heapq.heappush(self._finished, (report.first_line, self._sequence, report.build()))

    def _close_idle(self, number: int) -> None:
        for report in list(self._open.values()):
            if number - report.last_activity > IDLE_LINES:
                self._close(report)
            elif (
                number - report.first_line >= limits.MAX_REPORT_LINES
                or self._consumed - report.first_char >= limits.MAX_REPORT_CHARS
            ):
                # No real report is this long (see limits): hand it out, so that a log of
                # endless frames is parsed in bounded memory; what follows starts a new one.
                if not self._cut_reports:
                    log.warning(
                        "line %d: the report that starts at line %d spans %d lines (%d "
                        "characters); it ends here and the lines that follow start a new one",
                        number,
                        report.first_line,
                        number - report.first_line,
                        self._consumed - report.first_char,
                    )
                self._cut_reports += 1
                self._close(report)

    def _settle(self, report: ReportBuilder | None) -> ReportBuilder | None:
        """A report in its closing stretch ends at a line that is not one of its own."""
        if report is not None and report.closing:
            self._close(report)
            return None
        return report

    def _header_less_title(
        self, context: str | None, number: int, fallback: str
    ) -> tuple[str, int]:
        previous = self._previous.get(context)
        # A line that stayed the last of its context for IDLE_LINES lines titles nothing (as
        # a report that received nothing that long is complete): so a consumer of events()
        # need not hold the lines after it.
        if previous is not None and number - previous.number <= IDLE_LINES:
            return previous.text.strip(), previous.number
        return fallback, number

    # --- classification ------------------------------------------------------------------

    def _dispatch(
        self, line: LogLine, text: str, context: str | None, report: ReportBuilder | None
    ) -> bool:
        """Handle one kernel line; False when it is none of the report lines we know.

        Ordered by how often each kind of line occurs, with cheap tests (a substring, the first
        characters) before every regular expression: this runs for every input line.
        """
        first = text[0]
        if "+0x" in text:
            fast = _PLAIN_FRAME.match(text)
            if fast is not None:
                self._on_frame(line, _plain_frame(fast), context, report)
                return True
            frame = grammar.parse_frame(
                text, in_trace=report is not None and report.expects_frames()
            )
            if frame is not None:
                self._on_frame(line, frame, context, report)
                return True
        elif (first in _FRAME_START or text[-1] in ")]") and (
            report is not None and report.expects_frames()
        ):
            # Forms without "+0x" (raw addresses, "[inline]", "name (file:line)") only count
            # inside a trace.
            frame = grammar.parse_frame(text, in_trace=True)
            if frame is not None:
                self._on_frame(line, frame, context, report)
                return True
        if first == "<":
            marker = SECTION_MARKER.match(text)
            if marker is not None:
                self._on_section(line, marker, context, report)
                return True
        if text.startswith(grammar.IP_LINE_STARTS):
            ip = grammar.parse_ip(text)
            if ip is not None:
                self._on_ip(line, ip, context, report)
                return True
        if first in "CB":
            if text.startswith("Code:"):
                self._on_code(line, text, report)
                return True
            if text.startswith("CPU: "):
                return self._on_cpu_line(line, text, context, report)
            call_trace = CALL_TRACE.match(text)
            if call_trace is not None:
                self._on_call_trace(line, text, call_trace[1], context, report)
                return True
        if ":" in text[:12]:
            registers = grammar.parse_registers(text)
            if registers is not None:
                return self._on_registers(line, registers, report)
        if text.startswith(HEADER_STARTS) or "[#" in text:
            header = match_header(text)
            if header is not None:
                return self._on_header(line, text, header[0], header[1], context, report)
        if (
            text.startswith(_OTHER_STARTS)
            or first.isdigit()
            or (line.text[15:16] == " " and len(text) > 30)
        ):
            return self._on_other(line, text, context, report)
        return self._on_unrecognized(line, text, report)

    # --- handlers --------------------------------------------------------------------------

    def _on_frame(
        self,
        line: LogLine,
        parsed: FrameText,
        context: str | None,
        report: ReportBuilder | None,
    ) -> None:
        report = self._settle(report)
        if report is None:
            title, first_line = self._header_less_title(context, line.number, "stack trace")
            report = self._open_report(ReportKind.GENERIC, title, first_line, context)
        trace = report.open_trace()
        candidate = report.title_candidate
        if trace is None or (candidate is not None and is_trace_title(candidate[1])):
            if candidate is not None and is_trace_title(candidate[1]):
                trace = report.new_trace(trace_kind(candidate[1]), candidate[1], candidate[0])
            else:
                trace = report.new_trace("call_trace", None, line.number)
        report.title_candidate = None
        role = FrameRole.RETURN_ADDRESS
        marker = parsed.marker
        if marker is not None and marker.startswith("P"):
            role = FrameRole.EXACT_IP  # arm64: the pc of a pt_regs
        elif (
            trace.stack_frames == 0
            and trace.pc_key is not None
            and trace.pc_key == (parsed.symbol, parsed.offset, parsed.module)
        ):
            # arm64 before 6.13 (and riscv) unwind from the pt_regs and print their pc first.
            role = FrameRole.EXACT_IP
        trace.keep(_frame(line, parsed, role, trace.section))
        trace.stack_frames += 1
        trace.last_line = line.number
        report.confirmed = True
        report.dump_open = False
        report.touch(line.number)

    def _on_section(
        self,
        line: LogLine,
        marker: re.Match[str],
        context: str | None,
        report: ReportBuilder | None,
    ) -> None:
        report = self._settle(report)
        if report is None:
            title, first_line = self._header_less_title(context, line.number, "stack trace")
            report = self._open_report(ReportKind.GENERIC, title, first_line, context)
            report.weak = True
            report.confirmed = False
        trace = report.open_trace() or report.new_trace("call_trace", None, line.number)
        name = marker["name"]
        if marker["close"]:
            if trace.sections:
                trace.sections.pop()
        elif name in ("EOI", "EOE"):
            # Before 4.9 the interrupt/exception stack ended with <EOI>/<EOE> and the task
            # stack followed without a marker of its own.
            trace.sections[:] = [StackSection.TASK]
        else:
            trace.sections.append(_SECTIONS.get(name, StackSection.EXCEPTION))
        trace.last_line = line.number
        report.dump_open = False
        report.touch(line.number)
        rest = marker["rest"]
        if rest:
            parsed = grammar.parse_frame(rest, in_trace=True)
            if parsed is not None:
                self._on_frame(line, parsed, context, report)

    def _on_ip(
        self, line: LogLine, ip: IpText, context: str | None, report: ReportBuilder | None
    ) -> None:
        if report is None:
            if ip.frame is None:
                return
            title, first_line = self._header_less_title(context, line.number, line.text.strip())
            report = self._open_report(ReportKind.GENERIC, title, first_line, context)
        report.arch = report.arch or _ARCH_BY_IP_REGISTER.get(ip.register)
        frame: Frame | None = None
        trace_for_frame = None
        if ip.frame is not None:
            trace_for_frame = report.open_trace()
            if trace_for_frame is None:
                kind = "regs" if report.closing else "call_trace"
                trace_for_frame = report.new_trace(kind, None, line.number)
            role = FrameRole.EXACT_IP if ip.exact else FrameRole.RETURN_ADDRESS
            frame = _frame(line, ip.frame, role, trace_for_frame.section)
        ip_line = IpLine(
            line=line.number,
            raw_text=line.text.strip(),
            register=ip.register,
            segment=ip.segment,
            user_mode=ip.user_mode,
            runtime_address=ip.runtime_address,
            frame=frame,
        )
        dump = report.dump
        if report.dump_open and dump is not None and _same_dump(dump.ip, ip):
            pass  # lr after pc; an inline chain printed as several RIP lines
        elif report.dump_open and dump is not None and dump.ip is None:
            dump.ip = ip_line  # arm64 prints "pstate:" before "pc :"
        else:
            dump = report.new_dump(line.number)
            dump.ip = ip_line
        dump.last_line = line.number
        report.dump_open = True
        report.ip_lines.append(ip_line)
        if frame is not None and trace_for_frame is not None:
            trace_for_frame.keep(frame)
            trace_for_frame.last_line = line.number
            if ip.register in _PC_REGISTERS and ip.frame is not None:
                trace_for_frame.pc_key = (ip.frame.symbol, ip.frame.offset, ip.frame.module)
            report.confirmed = True
        report.touch(line.number)

    def _on_registers(
        self, line: LogLine, registers: tuple[tuple[str, int], ...], report: ReportBuilder | None
    ) -> bool:
        if report is None:
            return False
        dump = report.dump if report.dump_open else None
        if dump is None:
            dump = report.new_dump(line.number)
        dump.registers.extend(registers)
        dump.last_line = line.number
        report.dump_open = True
        if report.arch is None:
            for name, _ in registers:
                arch = _ARCH_BY_REGISTER.get(name)
                if arch is not None:
                    report.arch = arch
                    break
        report.touch(line.number)
        return True

    def _on_code(self, line: LogLine, text: str, report: ReportBuilder | None) -> None:
        if report is None:
            return
        code = grammar.parse_code(text, line.number, report.arch)
        if code is None:
            return
        dump = report.dump
        if dump is None or dump.code is not None:
            dump = report.new_dump(line.number)
        dump.code = code
        dump.last_line = max(dump.last_line, line.number)
        report.touch(line.number)

    def _on_cpu_line(
        self, line: LogLine, text: str, context: str | None, report: ReportBuilder | None
    ) -> bool:
        match = match_cpu_line(text)
        if match is None:
            return self._on_other(line, text, context, report)
        report = self._settle(report)
        if report is None or (report.has_cpu_line and not report.kind.is_crash):
            # dump_stack() with no header of its own (warn_alloc, the OOM killer, a second
            # dump in a row): the line before names it.
            title, first_line = self._header_less_title(context, line.number, text)
            report = self._open_report(ReportKind.DUMP_STACK, title, first_line, context)
        if not report.has_cpu_line:
            report.has_cpu_line = True
            report.cpu = grammar.decimal(match["cpu"])
            report.pid = grammar.decimal(match["pid"])
            report.comm = match["comm"]
            if match.re is CPU_LINE:
                report.set_release(match)
                rest = match["rest"] or ""
                build_id = BUILD_ID.search(rest)
                if build_id is not None:
                    report.build_id = build_id["build_id"]
        report.confirmed = True
        report.dump_open = False
        report.touch(line.number)
        return True

    def _on_call_trace(
        self,
        line: LogLine,
        text: str,
        rest: str,
        context: str | None,
        report: ReportBuilder | None,
    ) -> None:
        report = self._settle(report)
        if report is None:
            title, first_line = self._header_less_title(context, line.number, text)
            report = self._open_report(ReportKind.GENERIC, title, first_line, context)
        trace = report.open_trace()
        if trace is not None and trace.stack_frames == 0:
            # The walk that follows the IP lines (or the task line) printed before it.
            if trace.title is None:
                trace.title = text
            report.title_candidate = None
        else:
            trace = report.new_trace("call_trace", text, line.number)
        trace.last_line = line.number
        report.dump_open = False
        report.touch(line.number)
        if rest:
            parsed = grammar.parse_frame(rest, in_trace=True)
            if parsed is not None:
                self._on_frame(line, parsed, context, report)

    def _on_header(
        self,
        line: LogLine,
        text: str,
        rule: HeaderRule,
        match: re.Match[str],
        context: str | None,
        report: ReportBuilder | None,
    ) -> bool:
        number = line.number
        if rule.panic:
            message = match["message"].strip()
            if report is not None and report.kind.is_crash and report.confirmed:
                # panic() after an oops (panic_on_oops, panic_on_warn, "Fatal exception"):
                # the same report; panic's own dump_stack() follows as a new trace.
                report.panic_message = report.panic_message or message
                report.closing = False
                trace = report.trace
                if trace is not None and trace.stack_frames:
                    trace.closed = True
                report.dump_open = False
                report.touch(number)
                return True
            if report is not None:
                self._close(report)
            new = self._open_report(ReportKind.PANIC, text, number, context)
            new.panic_message = message
            return True
        if rule.kind is None:
            if report is not None:
                self._close(report)
            return True
        if report is not None and not report.closing:
            if report.kind in rule.continues and not report.has_stack_frames():
                report.touch(number)
                return True
            if rule.weak and report.kind.is_crash:
                return self._on_other(line, text, context, report)
        if rule.continuation_only:
            return self._on_other(line, text, context, report)
        if report is not None:
            self._close(report)
        new = self._open_report(rule.kind, text, number, context, weak=rule.weak)
        groups = match.groupdict()
        if groups.get("cpu") is not None:
            new.cpu = grammar.decimal(groups["cpu"])
        if groups.get("pid") is not None:
            new.pid = grammar.decimal(groups["pid"])
        if groups.get("comm") is not None:
            new.comm = groups["comm"]
        frame_text = groups.get("frame")
        if frame_text:
            parsed = grammar.parse_symbolic(frame_text)
            if parsed is not None:
                line_text = groups.get("line")
                line_number = grammar.decimal(line_text) if line_text else None
                if groups.get("file") and line_number is not None:
                    parsed = FrameText(
                        parsed.symbol,
                        parsed.offset,
                        parsed.kallsyms_size,
                        parsed.module,
                        parsed.module_build_id,
                        None,
                        True,
                        None,
                        SourceAnnotation(file=groups["file"], line=line_number),
                        False,
                    )
                trace = new.new_trace("call_trace", None, number)
                trace.keep(_frame(line, parsed, FrameRole.EXACT_IP, trace.section))
                new.confirmed = True
        return True

    def _on_other(
        self, line: LogLine, text: str, context: str | None, report: ReportBuilder | None
    ) -> bool:
        """Report lines that carry facts but no code address, then everything else."""
        number = line.number
        first = text[0]
        if report is not None:
            if first == "-" and text.startswith(END_TRACE):
                report.closing = True
                if report.trace is not None:
                    report.trace.closed = True
                report.touch(number)
                return True
            if first == "-" and text.startswith(END_PANIC):
                report.touch(number)
                self._close(report)
                return True
            if first == "=" and BANNER.match(text) is not None:
                if report.kind in _SANITIZERS:
                    report.closing = True
                    if report.trace is not None:
                        report.trace.closed = True
                    report.touch(number)
                    return True
                return False
            if first == "K" and text.startswith("Kernel Offset:"):
                offset = KERNEL_OFFSET.match(text)
                if offset is not None:
                    report.kaslr_offset = int(offset["offset"], 16) if offset["offset"] else 0
                    report.touch(number)
                    return True
            if first == "M" and text.startswith("Modules linked in:"):
                report.modules = _module_names(MODULES_LINE.match(text))
                report.touch(number)
                return True
            if text.startswith(CLOSING_LINES):
                report.touch(number)
                if text.startswith("Rebooting in"):
                    self._close(report)
                return True
            if not line.bare:
                # Console output of other programs (bare lines) does not end an oops's
                # closing stretch; a kernel line does.
                report = self._settle(report)
        if first == "H" and text.startswith("Hardware name:"):
            hardware = HARDWARE_LINE.match(text)
            if report is not None and hardware is not None:
                report.hardware = report.hardware or hardware["name"]
                report.touch(number)
                return True
            return False
        if first in "tT" and text.startswith(("task:", "Tainted:")):
            if text.startswith("task:"):
                task = TASK_LINE.match(text)
                if task is not None:
                    self._on_task(line, task, context, report)
                    return True
            else:
                taint = TAINT_LINE.match(text)
                if taint is not None and report is not None:
                    report.set_release(taint)
                    report.touch(number)
                    return True
        if first == "N" and text.startswith("Not tainted"):
            taint = TAINT_LINE.match(text)
            if taint is not None and report is not None:
                report.set_release(taint)
                report.touch(number)
                return True
        if first.isdigit() and report is not None:
            release = RELEASE_TAINT_LINE.match(text)
            if release is not None:
                report.set_release(release)
                report.touch(number)
                return True
        raw = line.text
        if len(raw) > 30 and raw[15:16] == " " and raw.rstrip()[-1:] in _HEX_DIGITS:
            old_task = OLD_TASK_LINE.match(raw)
            if old_task is not None:
                self._on_task(line, old_task, context, report)
                return True
        return self._on_unrecognized(line, text, report)

    def _on_unrecognized(self, line: LogLine, text: str, report: ReportBuilder | None) -> bool:
        """A kernel line none of the grammars knows: it may name the trace that follows."""
        if report is None or line.bare:
            return False  # console output of other programs changes nothing
        if report.closing:
            self._close(report)  # the oops's closing stretch is over
            return False
        report.title_candidate = (line.number, text)
        report.dump_open = False
        return False

    def _on_task(
        self,
        line: LogLine,
        task: re.Match[str],
        context: str | None,
        report: ReportBuilder | None,
    ) -> None:
        if report is None:
            report = self._open_report(ReportKind.GENERIC, line.text.strip(), line.number, context)
        trace = report.new_trace("task", line.text.strip(), line.number)
        trace.comm = task["comm"].strip()
        trace.task_state = task["state"]
        if task["pid"] is not None:
            trace.pid = grammar.decimal(task["pid"])
        report.dump_open = False
        report.touch(line.number)


# The common trace entry in one match (groups: "? ", symbol, offset, size, module, build id).
# ASCII classes: kernel symbol names are ASCII, and the ASCII matcher is faster.
_PLAIN_FRAME = re.compile(
    r"(\?\s+)?([\w.$@~]+)\+0x([0-9a-f]+)/0x([0-9a-f]+)(?: \[([\w.-]+)(?: ([0-9a-f]{16,64}))?\])?$",
    re.ASCII,
)


def _plain_frame(match: re.Match[str]) -> FrameText:
    unreliable, symbol, offset, size, module, build_id = match.groups()
    return FrameText(
        symbol,
        int(offset, 16),
        int(size, 16),
        module,
        build_id,
        None,
        unreliable is None,
        None,
        None,
        False,
    )


def _in_blocks(physical_lines: Iterable[str]) -> Iterator[list[str]]:
    # One line a list: a caller that feeds lines as they come (a log follower) gets each
    # report as soon as its lines are in, never after the lines of a batch.
    for line in physical_lines:
        yield [line]


def _kept(blocks: Iterable[list[str]], keep: Callable[[list[str]], object]) -> Iterator[list[str]]:
    for block in blocks:
        keep(block)
        yield block


def _same_dump(previous: IpLine | None, ip: IpText) -> bool:
    """Whether ``ip`` belongs to the register dump whose IP line is ``previous``."""
    if previous is None:
        return False
    if ip.register in _LR_REGISTERS:
        return True  # lr belongs to the dump of the pc printed just before it
    return (
        previous.register == ip.register
        and ip.runtime_address is not None
        and previous.runtime_address == ip.runtime_address
        and ip.frame is not None
        and previous.frame is not None
        and previous.frame.inline
    )


def _frame(line: LogLine, parsed: FrameText, role: FrameRole, section: StackSection) -> Frame:
    return make_frame(
        line=line.number,
        raw_text=line.text.rstrip(),
        role=role,
        section=section,
        reliable=parsed.reliable,
        symbol=parsed.symbol,
        offset=parsed.offset,
        kallsyms_size=parsed.kallsyms_size,
        module=parsed.module,
        module_build_id=parsed.module_build_id,
        runtime_address=parsed.runtime_address,
        marker=parsed.marker,
        source=parsed.source,
        inline=parsed.inline,
    )


def _module_names(match: re.Match[str] | None) -> tuple[str, ...]:
    """``Modules linked in: tracegen(OE) uhid [last unloaded: foo]`` -> module names."""
    if match is None:
        return ()
    text = match["modules"]
    cut = text.find("[last unloaded:")
    if cut >= 0:
        text = text[:cut]
    names = []
    for token in text.split():
        name = token.split("(", 1)[0]
        if name:
            names.append(name)
    return tuple(names)


def iter_reports(source: LogSource) -> Iterator[Report]:
    """Yield the reports found in ``source``, in input order, as soon as each is complete.

    ``source`` may be bytes (invalid UTF-8 is replaced, never an error), text, a binary or text
    file object, or an iterable of lines (bytes or text). Memory use is proportional to the
    largest report, not to the input.
    """
    return OopsParser().run_blocks(iter_physical_blocks(source))


@dataclass(frozen=True, slots=True, kw_only=True)
class LogStretch:
    """Consecutive lines of a log and the reports handed out by the time they were read.

    Every report comes in the stretch that holds its first line or in an earlier one: a
    consumer that takes each stretch's reports before its lines has what every report says
    about a line before the line (ltosyms decode prints the log with its decoding this way).
    """

    first_line: int  # the number of lines[0] (1 for the first line of the log)
    lines: tuple[str, ...]  # physical lines, terminators removed
    reports: tuple[Report, ...]


def iter_log_stretches(source: LogSource, lines_per_stretch: int = 1024) -> Iterator[LogStretch]:
    """The log (any :data:`LogSource`, read once) as stretches of about ``lines_per_stretch``
    lines with its reports, in input order. Memory follows the largest report: lines are held
    only while a report that may still reach them is open (or a line that may title one is
    recent, see :meth:`OopsParser.settled_before`)."""
    # Lines read and not yet handed out, from first_line on: a block of input is kept whole
    # as it is read (at most lines.BLOCK_SIZE characters past the line being parsed).
    pending: list[str] = []
    first_line = 1
    reports: list[Report] = []
    events = OopsParser().events(iter_physical_blocks(source), lines_per_stretch, pending.extend)
    for event in events:
        if not isinstance(event, int):
            reports.append(event)
            continue
        if event > first_line or reports:
            count = event - first_line
            lines = tuple(pending[:count])
            del pending[:count]
            yield LogStretch(first_line=first_line, lines=lines, reports=tuple(reports))
            first_line = event
            reports = []
    if pending or reports:
        yield LogStretch(first_line=first_line, lines=tuple(pending), reports=tuple(reports))


def parse_text(text: str | bytes) -> list[Report]:
    """All reports of a log held in memory."""
    return list(iter_reports(text))
