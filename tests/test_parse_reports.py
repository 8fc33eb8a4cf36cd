"""Report boundaries, kinds and traces on small logs that state one rule each."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from ltosyms.oops import FrameRole, OopsParser, ReportKind, StackSection, iter_reports, parse_text
from ltosyms.oops.headers import literal_start
from ltosyms.oops.lines import iter_log_lines
from ltosyms.oops.parse import IDLE_LINES


def _log(*lines: str) -> str:
    return "\n".join(lines) + "\n"


WARNING_61 = _log(
    "[   22.876932] ------------[ cut here ]------------",
    "[   22.876932] WARNING: CPU: 0 PID: 206 at lib/x.c:43 tg_check_value+0x10/0x20 [tracegen]",
    "[   22.876932] Modules linked in: tracegen(OE) uhid [last unloaded: loop]",
    "[   22.876932] CPU: 0 PID: 206 Comm: sh Tainted: G        W  OE      6.1.0-57-cloud-amd64 #1",
    "[   22.891285] Hardware name: QEMU Standard PC (i440FX + PIIX, 1996)",
    "[   22.891540] RIP: 0010:tg_check_value+0x10/0x20 [tracegen]",
    "[   22.891676] Code: 85 ff 7f 05 c3 cc cc cc cc <0f> 0b b8 ea ff ff ff c3",
    "[   22.891921] RSP: 0018:ff4da52cc040bd68 EFLAGS: 00000206",
    "[   22.892010] RAX: 0000000000000000 RBX: 0000000000000002 RCX: ff4da52cc040be50",
    "[   22.903875] Call Trace:",
    "[   22.903973]  <TASK>",
    "[   22.904019]  tg_warn_write+0x11/0x20 [tracegen]",
    "[   22.904260]  ? __handle_mm_fault+0x660/0xfa0",
    "[   22.904643]  entry_SYSCALL_64_after_hwframe+0x6e/0xd8",
    "[   22.904867] RIP: 0033:0x47b7a0",
    "[   22.904935] Code: 0f 05 <48> 3d 00 f0 ff ff",
    "[   22.905203] RSP: 002b:00007fff7629ba68 EFLAGS: 00000202 ORIG_RAX: 0000000000000001",
    "[   22.905810]  </TASK>",
    "[   22.905879] ---[ end trace 0000000000000000 ]---",
    "[   22.906000] lkdtm: something else",
)


def test_warning_report() -> None:
    (report,) = parse_text(WARNING_61)
    assert report.kind is ReportKind.WARNING and report.is_crash
    assert (report.first_line, report.last_line) == (2, 19)
    assert (report.cpu, report.pid, report.comm, report.taint) == (0, 206, "sh", "GWOE")
    assert report.modules_linked_in == ("tracegen", "uhid")
    assert report.hardware == "QEMU Standard PC (i440FX + PIIX, 1996)"
    (trace,) = report.traces
    assert [(f.line, f.role, f.section) for f in trace.frames] == [
        (2, FrameRole.EXACT_IP, StackSection.UNKNOWN),  # the WARNING header "at sym+off/size"
        (6, FrameRole.EXACT_IP, StackSection.UNKNOWN),  # RIP: 0010
        (12, FrameRole.RETURN_ADDRESS, StackSection.TASK),
        (13, FrameRole.RETURN_ADDRESS, StackSection.TASK),
        (14, FrameRole.RETURN_ADDRESS, StackSection.TASK),
    ]
    assert not trace.frames[3].reliable
    assert report.code is not None and report.code.line == 7 and report.code.marker_offset == 9
    assert dict(report.registers)["RBX"] == 2
    main, user = report.register_dumps
    assert (main.inside_trace, user.inside_trace, user.user_mode) == (False, True, True)
    assert user.code is not None and user.code.line == 16


def test_newer_warning_header_form() -> None:
    (report,) = parse_text(
        _log(
            "WARNING: kernel/sched/core.c:123 at foo_bar+0x12/0x40 [mod], CPU#3: kworker/3:1/456",
            "Call Trace:",
            " baz+0x1/0x2",
        )
    )
    assert report.kind is ReportKind.WARNING
    assert (report.cpu, report.pid, report.comm) == (3, 456, "kworker/3:1")
    header = report.traces[0].frames[0]
    assert (header.symbol, header.module, header.exact_ip) == ("foo_bar", "mod", True)
    assert header.source is not None and header.source.file == "kernel/sched/core.c"


def test_page_fault_continues_into_oops_and_panic() -> None:
    reports = parse_text(
        _log(
            "BUG: kernel NULL pointer dereference, address: 0000000000000000",
            "#PF: supervisor write access in kernel mode",
            "Oops: 0002 [#1] PREEMPT SMP NOPTI",
            "CPU: 0 PID: 209 Comm: sh Not tainted 6.1.0 #1",
            "RIP: 0010:tg_store+0x5/0x10 [tracegen]",
            "Code: Unable to access opcode bytes at 0xffffffffc03a3fdb.",
            "Call Trace:",
            " <TASK>",
            " tg_oops_write+0x17/0x30 [tracegen]",
            " </TASK>",
            "---[ end trace 0000000000000000 ]---",
            "RIP: 0010:tg_store+0x5/0x10 [tracegen]",
            "RSP: 0018:ff4da52cc046bd78 EFLAGS: 00000246",
            "Kernel panic - not syncing: Fatal exception",
            "Kernel Offset: 0x16800000 from 0xffffffff81000000 (relocation range: ...)",
            "---[ end Kernel panic - not syncing: Fatal exception ]---",
            "Oops: 0002 [#2] PREEMPT SMP NOPTI",
        )
    )
    first, second = reports
    assert first.kind is ReportKind.PAGE_FAULT and first.taint == ""
    assert (first.first_line, first.last_line) == (1, 16)
    assert first.panic_message == "Fatal exception" and first.kaslr_offset == 0x16800000
    assert [t.kind for t in first.traces] == ["call_trace", "regs"]
    assert [f.line for f in first.traces[1].frames] == [12]
    assert second.kind is ReportKind.OOPS and second.first_line == 17


def test_kernel_bug_then_invalid_opcode_is_one_report() -> None:
    reports = parse_text(
        _log(
            "kernel BUG at drivers/misc/lkdtm/bugs.c:78!",
            "invalid opcode: 0000 [#1] SMP",
            "RIP: 0010:lkdtm_BUG+0x0/0x10 [lkdtm]",
        )
    )
    assert [r.kind for r in reports] == [ReportKind.BUG]


def test_kasan_allocated_and_freed_stacks_are_traces() -> None:
    (report,) = parse_text(
        _log(
            "==================================================================",
            "BUG: KASAN: use-after-free in foo+0x10/0x20",
            "Read of size 8 at addr ffff888012345678 by task syz/123",
            "",
            "CPU: 1 PID: 123 Comm: syz Not tainted 6.1.0 #1",
            "Call Trace:",
            " <TASK>",
            " dump_stack_lvl+0x1/0x2",
            " foo+0x10/0x20",
            " </TASK>",
            "",
            "Allocated by task 5:",
            " kasan_save_stack+0x1/0x2",
            " kmalloc_trace+0x1/0x2",
            "",
            "Freed by task 6:",
            " kasan_save_stack+0x1/0x2",
            " kfree+0x1/0x2",
            "",
            "The buggy address belongs to the object at ffff888012345600",
            "==================================================================",
            "Disabling lock debugging due to kernel taint",
            "Kernel panic - not syncing: panic_on_warn set ...",
            "CPU: 1 PID: 123 Comm: syz Tainted: G    B   6.1.0 #1",
            "Call Trace:",
            " panic+0x1/0x2",
            "some later line",
        )
    )
    assert report.kind is ReportKind.KASAN
    assert [(t.kind, t.title, len(t.frames)) for t in report.traces] == [
        ("call_trace", "Call Trace:", 2),
        ("allocated", "Allocated by task 5:", 2),
        ("freed", "Freed by task 6:", 2),
        ("call_trace", "Call Trace:", 1),
    ]
    assert report.panic_message == "panic_on_warn set ..." and report.last_line == 26


def test_sysrq_show_state_has_one_trace_per_task() -> None:
    (report,) = parse_text(
        _log(
            "sysrq: Show State",
            "task:init            state:S stack:0     pid:1     ppid:0      flags:0x00000000",
            "Call Trace:",
            " <TASK>",
            " __schedule+0x34d/0xa00",
            " </TASK>",
            "task:kworker/0:0     state:I stack:0     pid:7     ppid:2      flags:0x00004000",
            "Workqueue:  0x0 (events)",
            "Call Trace:",
            " <TASK>",
            " __schedule+0x34d/0xa00",
            " worker_thread+0xaf/0x380",
            " </TASK>",
            # Before 5.14: "comm state" columns, no "task:" label.
            "syz-executor5   D24456  3568   3565 0x00000004",
            "Call Trace:",
            " __schedule+0x1/0x2",
        )
    )
    assert report.kind is ReportKind.SYSRQ_SHOW_STATE and not report.is_crash
    assert [(t.kind, t.comm, t.pid, t.task_state, len(t.frames)) for t in report.traces] == [
        ("task", "init", 1, "S", 1),
        ("task", "kworker/0:0", 7, "I", 2),
        ("task", "syz-executor5", 3568, "D", 1),
    ]


def test_nmi_backtraces_are_one_report_per_cpu() -> None:
    reports = parse_text(
        _log(
            "sysrq: Show backtrace of all active CPUs",
            "NMI backtrace for cpu 1",
            "CPU: 1 PID: 1 Comm: init Not tainted 6.1.0 #1",
            "Call Trace:",
            " nmi_cpu_backtrace+0x1/0x2",
            "Sending NMI from CPU 1 to CPUs 0:",
            "NMI backtrace for cpu 0 skipped: idling at native_safe_halt+0xb/0x10",
        )
    )
    assert [(r.kind, r.cpu) for r in reports] == [
        (ReportKind.NMI_BACKTRACE, 1),
        (ReportKind.NMI_BACKTRACE, 0),
    ]
    (idle,) = reports[1].traces[0].frames
    assert (idle.symbol, idle.exact_ip) == ("native_safe_halt", True)


def test_sections_old_and_new() -> None:
    (report,) = parse_text(
        _log(
            "BUG: soft lockup - CPU#0 stuck for 22s! [syz:1]",
            "Call Trace:",
            " <IRQ>",
            " irq_a+0x1/0x2",
            " </IRQ>",
            " <TASK>",
            " task_a+0x1/0x2",
            " </TASK>",
            " <NMI>  [<ffffffff81000001>] nmi_a+0x1/0x2",  # marker and entry on one line
            " <EOE>  [<ffffffff81000002>] ? after_eoe+0x1/0x2",  # before 4.9: task stack next
            " <#DF>",
            " df_a+0x1/0x2",
        )
    )
    assert report.kind is ReportKind.SOFT_LOCKUP
    sections = [(f.symbol, f.section) for f in report.iter_frames()]
    assert sections == [
        ("irq_a", StackSection.IRQ),
        ("task_a", StackSection.TASK),
        ("nmi_a", StackSection.NMI),
        ("after_eoe", StackSection.TASK),
        ("df_a", StackSection.EXCEPTION),
    ]


def test_pt_regs_inside_a_trace_is_an_exact_ip() -> None:
    (report,) = parse_text(
        _log(
            "NMI backtrace for cpu 0",
            "Call Trace:",
            " <IRQ>",
            " nmi_cpu_backtrace+0x1/0x2",
            " </IRQ>",
            " <TASK>",
            "RIP: 0010:clear_user_erms+0xa/0x20",
            "RSP: 0018:ff4da52cc0453b60 EFLAGS: 00040206",
            " read_zero+0x5d/0x110",
        )
    )
    frames = [(f.symbol, f.exact_ip, f.section) for f in report.iter_frames()]
    assert frames == [
        ("nmi_cpu_backtrace", False, StackSection.IRQ),
        ("clear_user_erms", True, StackSection.TASK),
        ("read_zero", False, StackSection.TASK),
    ]
    assert [d.inside_trace for d in report.register_dumps] == [True]


def test_arm64_first_entry_repeating_pc_is_exact_and_lr_is_not() -> None:
    (report,) = parse_text(
        _log(
            "Internal error: Oops - BUG: 00000000f2000800 [#1] SMP",
            "pstate: 60000005 (nZCv daif -PAN -UAO -TCO -DIT -SSBS BTYPE=--)",
            "pc : lkdtm_BUG+0x0/0x4 [lkdtm]",
            "lr : lkdtm_do_action+0x18/0x2c [lkdtm]",
            "sp : ffffff800107fcb0",
            "x29: ffffff800107fcb0 x28: ffffff8000bd9500 x27: 0000000000000001",
            "Call trace:",
            " lkdtm_BUG+0x0/0x4 [lkdtm]",
            " direct_entry+0x13c/0x174 [lkdtm]",
            "Code: 910003fd b0000020 913ac400 97fffc81 (d4210000)",
        )
    )
    assert report.arch == "aarch64"
    assert [(f.line, f.exact_ip) for f in report.iter_frames()] == [
        (3, True),
        (4, False),
        (8, True),
        (9, False),
    ]
    (dump,) = report.register_dumps
    assert dump.ip is not None and dump.ip.register == "pc"
    assert [name for name, _ in dump.registers] == ["pstate", "sp", "x29", "x28", "x27"]
    assert report.code is not None and report.code.marker_offset == 16


def test_interleaved_callers_are_not_glued() -> None:
    reports = parse_text(
        _log(
            "[   10.000001][ T100] WARNING: CPU: 0 PID: 100 at a.c:1 fa+0x1/0x2",
            "[   10.000002][ T200] WARNING: CPU: 1 PID: 200 at b.c:2 fb+0x1/0x2",
            "[   10.000003][ T100] Call Trace:",
            "[   10.000004][ T200] Call Trace:",
            "[   10.000005][ T100]  a_caller+0x1/0x2",
            "[   10.000006][ T200]  b_caller+0x1/0x2",
            "[   10.000007][    C1] rcu: something from an interrupt",
            "[   10.000008][ T100]  a_outer+0x1/0x2",
            "[   10.000009][ T200]  b_outer+0x1/0x2",
        )
    )
    assert [(r.caller, r.first_line, r.last_line) for r in reports] == [
        ("T100", 1, 8),
        ("T200", 2, 9),
    ]
    assert [f.symbol for f in reports[0].iter_frames()] == ["fa", "a_caller", "a_outer"]
    assert [f.symbol for f in reports[1].iter_frames()] == ["fb", "b_caller", "b_outer"]


def test_weak_headers_need_a_stack_to_count() -> None:
    assert parse_text(_log("WARNING: the mand mount option is being deprecated")) == []
    assert parse_text(_log("INFO: NMI handler (x) took too long to run: 2.277 msecs")) == []
    assert parse_text(_log("BUG UNIX (Not tainted): kasan: bad access detected")) == []
    (report,) = parse_text(
        _log(
            "INFO: trying to register non-static key.",
            "CPU: 0 PID: 1 Comm: x Not tainted 4.14 #1",
            "Call Trace:",
            " dump_stack+0x1/0x2",
        )
    )
    assert report.kind is ReportKind.LOCKDEP
    # A panic after an unconfirmed weak header is a report of its own.
    (panic,) = parse_text(_log("WARNING: foo", "Kernel panic - not syncing: bar"))
    assert (panic.kind, panic.panic_message) == (ReportKind.PANIC, "bar")


def test_weak_header_inside_a_crash_report_does_not_split_it() -> None:
    (report,) = parse_text(
        _log(
            "INFO: task syz:123 blocked for more than 143 seconds.",
            "task:syz             state:D stack:0     pid:123   ppid:1      flags:0x00004000",
            "Call Trace:",
            " __schedule+0x1/0x2",
            "INFO: lockdep is turned off.",
            " schedule+0x1/0x2",
        )
    )
    assert report.kind is ReportKind.HUNG_TASK
    assert [f.symbol for f in report.iter_frames()] == ["__schedule", "schedule"]


def test_dump_stack_without_header_is_named_by_the_line_before() -> None:
    (report,) = parse_text(
        _log(
            "[    8.935712] init: vmalloc error: size 6597069766656, exceeds total pages",
            "[    8.936232] CPU: 0 PID: 1 Comm: init Not tainted 6.1.0 #1",
            "[    8.936232] Call Trace:",
            "[    8.936232]  dump_stack_lvl+0x44/0x5c",
        )
    )
    assert report.kind is ReportKind.DUMP_STACK and not report.is_crash
    assert report.title == "init: vmalloc error: size 6597069766656, exceeds total pages"
    assert report.first_line == 1


def test_console_noise_inside_a_trace_is_ignored() -> None:
    (report,) = parse_text(
        _log(
            "[   17.416707] sysrq: Show State",
            "[   17.416707] task:init            state:R  running task     stack:0     pid:1",
            "[   17.416707] Call Trace:",
            "[   17.416707]  ksys_write+0x6b/0xf0",
            "=== sysrq t",  # user-space output between two kernel lines
            "[   17.435849]  do_syscall_64+0x5d/0x90",
        )
    )
    assert [len(t.frames) for t in report.traces] == [2]


def test_already_symbolized_trace() -> None:
    (report,) = parse_text(
        _log(
            "BUG: KASAN: use-after-free in ip6_send_skb+0x2f5/0x330 net/ipv6/ip6_output.c:1748",
            "Call Trace:",
            " __dump_stack lib/dump_stack.c:16 [inline]",
            " dump_stack+0x292/0x395 lib/dump_stack.c:52",
            " ? rawv6_push_pending_frames net/ipv6/raw.c:613 [inline]",
            " ? rawv6_sendmsg+0x2ede/0x4400 net/ipv6/raw.c:932",
        )
    )
    frames = list(report.iter_frames())
    assert [(f.symbol, f.inline, f.reliable) for f in frames] == [
        ("__dump_stack", True, True),
        ("dump_stack", False, True),
        ("rawv6_push_pending_frames", True, False),
        ("rawv6_sendmsg", False, False),
    ]
    assert all(f.source is not None for f in frames)


def test_memory_leak_reports() -> None:
    reports = parse_text(
        _log(
            "BUG: memory leak",
            "unreferenced object 0xffff880039a55260 (size 64):",
            '  comm "executor", pid 11746, jiffies 4298984475 (age 16.078s)',
            "  backtrace:",
            "    [<ffffffff848a2f5f>] sock_kmalloc+0x7f/0xc0 net/core/sock.c:1774",
            "unreferenced object 0xffff880039a55300 (size 64):",
            "  backtrace:",
            "    [<ffffffff848a2f5f>] sock_kmalloc+0x7f/0xc0 net/core/sock.c:1774",
        )
    )
    assert [(r.kind, r.first_line) for r in reports] == [
        (ReportKind.MEMORY_LEAK, 1),
        (ReportKind.MEMORY_LEAK, 6),
    ]
    assert reports[0].traces[0].kind == "leak_backtrace"


def test_frames_without_any_header_form_a_generic_report() -> None:
    (report,) = parse_text(_log(" foo+0x1/0x2", " bar+0x3/0x4"))
    assert report.kind is ReportKind.GENERIC and not report.is_crash
    assert len(report.traces[0].frames) == 2


def test_idle_report_is_handed_out_before_the_input_ends() -> None:
    consumed = 0

    def lines() -> Iterator[str]:
        nonlocal consumed
        for line in (
            "BUG: unable to handle page fault for address: 0",
            "Call Trace:",
            " f+0x1/0x2",
        ):
            consumed += 1
            yield line
        for number in range(10 * IDLE_LINES):
            consumed += 1
            yield f"unrelated line {number}"

    reports = iter_reports(lines())
    report = next(reports)
    assert report.kind is ReportKind.PAGE_FAULT and report.last_line == 3
    assert consumed < 3 * IDLE_LINES  # streamed: the rest of the input was not read yet


def test_parser_fed_line_by_line_agrees() -> None:
    parser = OopsParser()
    for line in iter_log_lines(WARNING_61):
        parser.feed(line)
    parser.finish()
    assert list(parser.pop_finished()) == parse_text(WARNING_61)


def test_sources_agree() -> None:
    data = WARNING_61.replace("\n", "\r\n").encode()
    expected = parse_text(WARNING_61)
    assert parse_text(data) == expected
    assert list(iter_reports(io.BytesIO(data))) == expected
    assert list(iter_reports(io.BytesIO(data).readlines())) == expected
    assert list(iter_reports(WARNING_61.splitlines())) == expected


@pytest.mark.parametrize(
    ("pattern", "start"),
    [
        ("BUG: KASAN: (?P<detail>.*)", "BUG: KASAN: "),
        ("Kernel panic - not syncing:? ?(?P<message>.*)$", "Kernel panic - not syncing"),
        (r"Oops\b", "Oops"),
        (r"a\.b", "a"),  # an escape is where the plain start ends
        ("ab?c", "a"),  # the character before a quantifier is not certain
        ("a*", ""),
        ("(?:NMI )?watchdog: ", ""),
        ("VFS: (?:Busy inodes|Close: )", "VFS: "),  # alternatives inside a group
        ("abc|def", ""),  # alternatives at the top level: a match may start either way
        ("x[|]y|z", ""),
        (r"x\|y", "x"),
        ("x[]|]y", "x"),
    ],
)
def test_a_header_rules_literal_start(pattern: str, start: str) -> None:
    assert literal_start(pattern) == start
