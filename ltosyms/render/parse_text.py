"""Parsed reports as a text summary: one block per report, one line per frame."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ltosyms.oops.records import CodeBytes, Frame, Report, StackSection, Trace


def frame_label(frame: Frame) -> str:
    """The frame as the kernel would print it: ``? name+0xOFF/0xSIZE [module]`` or an address."""
    parts = []
    if not frame.reliable:
        parts.append("?")
    if frame.symbol is not None:
        if frame.offset is None:
            parts.append(frame.symbol)
        elif frame.kallsyms_size is None:
            parts.append(f"{frame.symbol}+{frame.offset:#x}")
        else:
            parts.append(f"{frame.symbol}+{frame.offset:#x}/{frame.kallsyms_size:#x}")
    elif frame.runtime_address is not None:
        parts.append(f"{frame.runtime_address:#x}")
    if frame.module is not None:
        parts.append(f"[{frame.module}]")
    if frame.marker is not None:
        parts.append(f"({frame.marker})")
    if frame.source is not None:
        parts.append(f"{frame.source.file}:{frame.source.line}")
    if frame.inline:
        parts.append("[inline]")
    if frame.symbol is not None and frame.runtime_address is not None:
        parts.append(f"@ {frame.runtime_address:#x}")
    return " ".join(parts)


def _frame_row(frame: Frame) -> str:
    role = "ip " if frame.exact_ip else "ret"
    section = "" if frame.section is StackSection.UNKNOWN else frame.section.value
    return f"    {frame.line:>7}  {role}  {section:<9} {frame_label(frame)}"


def _trace_lines(index: int, trace: Trace) -> Iterator[str]:
    heading = f"  trace {index}: {trace.kind}, {len(trace.frames)} frames, lines "
    heading += f"{trace.first_line}-{trace.last_line}"
    if trace.comm is not None:
        heading += f", task {trace.comm}"
        if trace.pid is not None:
            heading += f":{trace.pid}"
        if trace.task_state is not None:
            heading += f" state {trace.task_state}"
    if trace.frames_not_kept:
        heading += f" ({trace.frames_not_kept} entries past the first {len(trace.frames)} not kept)"
    yield heading
    for frame in trace.frames:
        yield _frame_row(frame)


def _code_summary(code: CodeBytes) -> str:
    if code.unavailable:
        where = "" if code.unavailable_address is None else f" at {code.unavailable_address:#x}"
        return f"  code: line {code.line}, not readable{where}"
    marker = "no marker" if code.marker_offset is None else f"marker at byte {code.marker_offset}"
    return f"  code: line {code.line}, {code.arch}, {len(code.data)} bytes, {marker}"


def report_lines(index: int, report: Report) -> Iterator[str]:
    crash = "crash" if report.is_crash else "no crash"
    heading = f"report {index}: {report.kind.value} ({crash}), lines "
    heading += f"{report.first_line}-{report.last_line}"
    if report.caller is not None:
        heading += f", caller {report.caller}"
    yield heading
    yield f"  title: {report.title}"
    task = []
    if report.cpu is not None:
        task.append(f"cpu {report.cpu}")
    if report.pid is not None:
        task.append(f"pid {report.pid}")
    if report.comm is not None:
        task.append(f"comm {report.comm}")
    if task:
        yield "  task: " + ", ".join(task)
    kernel = []
    if report.release is not None:
        kernel.append(
            report.release + (f" {report.kernel_version}" if report.kernel_version else "")
        )
    if report.taint is not None:
        kernel.append(f"taint {report.taint or '-'}")
    if report.build_id is not None:
        kernel.append(f"build id {report.build_id}")
    if report.arch is not None:
        kernel.append(report.arch)
    if kernel:
        yield "  kernel: " + ", ".join(kernel)
    if report.modules_linked_in:
        yield "  modules: " + " ".join(report.modules_linked_in)
    if report.panic_message is not None:
        yield f"  panic: {report.panic_message}"
    if report.kaslr_offset is not None:
        yield f"  kaslr offset: {report.kaslr_offset:#x}"
    for ip in report.ip_lines:
        mode = "user" if ip.user_mode else "kernel"
        yield f"  ip: line {ip.line}, {ip.register} ({mode}): {ip.raw_text}"
    if report.code is not None:
        yield _code_summary(report.code)
    for number, trace in enumerate(report.traces, start=1):
        yield from _trace_lines(number, trace)


def reports_text(reports: Iterable[Report]) -> Iterator[str]:
    """The summary, one line at a time, as each report arrives."""
    count = 0
    crashes = 0
    for report in reports:
        if count:
            yield ""
        count += 1
        crashes += report.is_crash
        yield from report_lines(count, report)
    if count == 0:
        yield "no reports found"
    else:
        yield ""
        yield f"{count} reports, {crashes} of them crashes"
