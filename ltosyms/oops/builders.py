"""Mutable builders the parser fills while a report is open, and the records they become.

One builder per open report, trace and register dump; ``build()`` turns each into its frozen
record from :mod:`ltosyms.oops.records` when the report ends. Nothing here reads text.
"""

from __future__ import annotations

import dataclasses
import re

from ltosyms import limits
from ltosyms.oops.headers import is_trace_title
from ltosyms.oops.records import (
    CodeBytes,
    Frame,
    FrameRole,
    IpLine,
    RegisterDump,
    Report,
    ReportKind,
    StackSection,
    Trace,
)


class TraceBuilder:
    """A trace being read: its frames, and the ``<IRQ>``-style section stack it is in.

    ``closed`` is set when something ended the walk (an end marker, the next trace's title);
    ``pc_key`` remembers the ``pc :`` frame printed before the walk, which arm64 and riscv print
    again as the first entry.
    """

    __slots__ = (
        "closed",
        "comm",
        "first_line",
        "frames",
        "frames_not_kept",
        "kind",
        "last_line",
        "pc_key",
        "pid",
        "sections",
        "stack_frames",
        "task_state",
        "title",
    )

    def __init__(self, kind: str, title: str | None, first_line: int) -> None:
        self.kind = kind
        self.title = title
        self.first_line = first_line
        self.last_line = first_line
        self.frames: list[Frame] = []
        self.frames_not_kept = 0  # entries past limits.MAX_TRACE_FRAMES
        self.sections: list[StackSection] = []
        self.stack_frames = 0  # entries of the stack walk (not IP lines printed before it)
        self.closed = False
        self.pc_key: tuple[str | None, int | None, str | None] | None = None
        self.comm: str | None = None
        self.pid: int | None = None
        self.task_state: str | None = None

    @property
    def full(self) -> bool:
        """Whether the trace holds limits.MAX_TRACE_FRAMES entries: the next are counted."""
        return len(self.frames) >= limits.MAX_TRACE_FRAMES

    def keep(self, frame: Frame) -> None:
        """Add ``frame``, or count it when the trace is :attr:`full`."""
        if len(self.frames) < limits.MAX_TRACE_FRAMES:
            self.frames.append(frame)
        else:
            self.frames_not_kept += 1

    @property
    def section(self) -> StackSection:
        return self.sections[-1] if self.sections else StackSection.UNKNOWN

    def build(self) -> Trace:
        frames = self.frames
        if any(frame.inline for frame in frames):
            frames = _inline_roles(frames)
        return Trace(
            kind=self.kind,
            title=self.title,
            first_line=self.first_line,
            last_line=self.last_line,
            frames=tuple(frames),
            comm=self.comm,
            pid=self.pid,
            task_state=self.task_state,
            frames_not_kept=self.frames_not_kept,
        )


def _inline_roles(frames: list[Frame]) -> list[Frame]:
    # An inlined frame of an already-symbolized log shares the address of the physical frame
    # printed after it, so it shares that frame's role too.
    result = list(frames)
    role = FrameRole.RETURN_ADDRESS
    for index in range(len(result) - 1, -1, -1):
        frame = result[index]
        if frame.inline:
            if frame.role is not role:
                result[index] = _with_role(frame, role)
        else:
            role = frame.role
    return result


def _with_role(frame: Frame, role: FrameRole) -> Frame:
    return dataclasses.replace(frame, role=role)


class DumpBuilder:
    """A register dump being read: IP line, register lines, ``Code:``."""

    __slots__ = ("code", "first_line", "inside_trace", "ip", "last_line", "registers")

    def __init__(self, first_line: int, inside_trace: bool) -> None:
        self.first_line = first_line
        self.last_line = first_line
        self.ip: IpLine | None = None
        self.registers: list[tuple[str, int]] = []
        self.code: CodeBytes | None = None
        self.inside_trace = inside_trace

    def build(self) -> RegisterDump:
        return RegisterDump(
            first_line=self.first_line,
            last_line=self.last_line,
            ip=self.ip,
            registers=tuple(self.registers),
            code=self.code,
            inside_trace=self.inside_trace,
        )


class ReportBuilder:
    """A report being read.

    ``context`` is the caller id it was opened under (its key among the open reports).
    ``weak`` reports (generic ``WARNING:``/``INFO:`` headers) are kept only once ``confirmed``
    by a stack entry, an IP line or a ``CPU:`` line. ``closing`` is the stretch after
    ``---[ end trace ]---`` or a sanitizer's closing banner, where only the lines an oops
    still prints (register re-dump, ``Kernel panic``, ``Kernel Offset``) belong to it.
    ``title_candidate`` is the last unrecognized line: it names the next trace when an entry
    follows it ("Allocated by task 5:"). ``dump_open`` says register lines still extend the
    current dump. ``last_activity`` drives the idle close.
    """

    __slots__ = (
        "arch",
        "build_id",
        "caller",
        "closing",
        "comm",
        "confirmed",
        "context",
        "cpu",
        "dump",
        "dump_open",
        "dumps",
        "first_char",
        "first_line",
        "hardware",
        "has_cpu_line",
        "ip_lines",
        "kaslr_offset",
        "kernel_version",
        "kind",
        "last_activity",
        "last_line",
        "modules",
        "panic_message",
        "pid",
        "release",
        "taint",
        "title",
        "title_candidate",
        "trace",
        "traces",
        "weak",
    )

    def __init__(
        self, kind: ReportKind, title: str, first_line: int, context: str | None, *, weak: bool
    ) -> None:
        self.kind = kind
        self.title = title
        self.first_line = first_line
        self.first_char = 0  # characters of input read before it (for MAX_REPORT_CHARS)
        self.last_line = first_line
        self.last_activity = first_line
        self.context = context
        self.caller = context
        self.weak = weak
        self.confirmed = not weak
        self.closing = False
        self.cpu: int | None = None
        self.pid: int | None = None
        self.comm: str | None = None
        self.has_cpu_line = False
        self.release: str | None = None
        self.kernel_version: str | None = None
        self.taint: str | None = None
        self.build_id: str | None = None
        self.hardware: str | None = None
        self.modules: tuple[str, ...] = ()
        self.arch: str | None = None
        self.ip_lines: list[IpLine] = []
        self.dumps: list[DumpBuilder] = []
        self.dump: DumpBuilder | None = None
        self.dump_open = False
        self.traces: list[TraceBuilder] = []
        self.trace: TraceBuilder | None = None
        self.title_candidate: tuple[int, str] | None = None
        self.kaslr_offset: int | None = None
        self.panic_message: str | None = None

    def touch(self, number: int) -> None:
        self.last_line = max(self.last_line, number)
        self.last_activity = number

    def new_trace(self, kind: str, title: str | None, first_line: int) -> TraceBuilder:
        if self.trace is not None:
            self.trace.closed = True
        trace = TraceBuilder(kind, title, first_line)
        self.traces.append(trace)
        self.trace = trace
        self.title_candidate = None
        return trace

    def open_trace(self) -> TraceBuilder | None:
        trace = self.trace
        return trace if trace is not None and not trace.closed else None

    def expects_frames(self) -> bool:
        """Inside a trace, or right after a line that names one ("backtrace:")."""
        trace = self.trace
        if trace is not None and not trace.closed:
            return True
        candidate = self.title_candidate
        return candidate is not None and is_trace_title(candidate[1])

    def has_stack_frames(self) -> bool:
        return any(trace.stack_frames for trace in self.traces)

    def new_dump(self, first_line: int) -> DumpBuilder:
        trace = self.open_trace()
        dump = DumpBuilder(first_line, trace is not None and trace.stack_frames > 0)
        self.dumps.append(dump)
        self.dump = dump
        self.dump_open = True
        return dump

    def set_release(self, match: re.Match[str]) -> None:
        if self.release is None:
            self.release = match["release"]
            self.kernel_version = match["version"]
            flags = match["flags"]
            self.taint = "".join(flags.split()) if flags is not None else ""

    def build(self) -> Report:
        traces = tuple(trace.build() for trace in self.traces if trace.frames)
        return Report(
            kind=self.kind,
            title=self.title,
            first_line=self.first_line,
            last_line=self.last_line,
            caller=self.caller,
            cpu=self.cpu,
            pid=self.pid,
            comm=self.comm,
            release=self.release,
            kernel_version=self.kernel_version,
            taint=self.taint,
            build_id=self.build_id,
            hardware=self.hardware,
            modules_linked_in=self.modules,
            arch=self.arch,
            ip_lines=tuple(self.ip_lines),
            register_dumps=tuple(dump.build() for dump in self.dumps),
            traces=traces,
            kaslr_offset=self.kaslr_offset,
            panic_message=self.panic_message,
        )
