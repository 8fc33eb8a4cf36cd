"""Grammar of trace entries, IP lines, register lines and Code: lines (ltosyms.oops.frames)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from ltosyms.oops.frames import parse_code, parse_frame, parse_ip, parse_registers
from ltosyms.oops.records import (
    Frame,
    FrameRole,
    SourceAnnotation,
    StackSection,
    make_frame,
)

BUILD_ID = "b6f57dc61cf5f6932874fe02c99a5089fe6d9d19"


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        # (symbol, offset, size, module, build id, runtime address, reliable)
        (" dump_stack_lvl+0x44/0x5c", ("dump_stack_lvl", 0x44, 0x5C, None, None, None, True)),
        (
            " ? disksize_store+0x78/0x140 [zram]",
            ("disksize_store", 0x78, 0x140, "zram", None, None, False),
        ),
        (
            f" direct_entry+0x147/0x160 [lkdtm {BUILD_ID}]",
            ("direct_entry", 0x147, 0x160, "lkdtm", BUILD_ID, None, True),
        ),
        (
            " tg_sleep_deep.constprop.0+0xf/0x20 [tracegen]",
            ("tg_sleep_deep.constprop.0", 0xF, 0x20, "tracegen", None, None, True),
        ),
        # Before 4.9: raw address first, "?" after it.
        (
            " [<ffffffff81234567>] ? foo+0x12/0x40",
            ("foo", 0x12, 0x40, None, None, 0xFFFFFFFF81234567, False),
        ),
        (
            " [<ffffffff81234567>] foo+0x12/0x40",
            ("foo", 0x12, 0x40, None, None, 0xFFFFFFFF81234567, True),
        ),
        # No size (some arches and tools print only the offset).
        (" foo+0x12", ("foo", 0x12, None, None, None, None, True)),
        # arm: the frame is the "from" part, a return address.
        (
            "[<c010f3b0>] (unwind_backtrace) from [<c010ba58>] (show_stack+0x10/0x14)",
            ("show_stack", 0x10, 0x14, None, None, 0xC010BA58, True),
        ),
        # powerpc: stack pointer, then the saved LR; "(unreliable)".
        (
            "[c000000049a87710] [c0000000000286fc] __switch_to+0x43c/0x6d0 (unreliable)",
            ("__switch_to", 0x43C, 0x6D0, None, None, 0xC0000000000286FC, False),
        ),
        # s390: an entry from a register is parenthesized.
        (
            "([<000000000011d6b8>] show_trace+0x130/0x134)",
            ("show_trace", 0x130, 0x134, None, None, 0x11D6B8, False),
        ),
        # C++ names from the syzkaller symbolize test.
        (" _Z8fakeNameiii+0x49a/0x1a10", ("_Z8fakeNameiii", 0x49A, 0x1A10, None, None, None, True)),
    ],
)
def test_frame_fields(text: str, fields: tuple[object, ...]) -> None:
    frame = parse_frame(text, in_trace=False)
    assert frame is not None
    got = (
        frame.symbol,
        frame.offset,
        frame.kallsyms_size,
        frame.module,
        frame.module_build_id,
        frame.runtime_address,
        frame.reliable,
    )
    assert got == fields


def test_arm64_source_markers() -> None:
    frame = parse_frame(" el1_interrupt+0x30/0x50 (P)", in_trace=False)
    assert frame is not None and frame.marker == "P"
    frame = parse_frame(f" lkdtm_do_action+0x18/0x2c [lkdtm {BUILD_ID}] (L)", in_trace=False)
    assert frame is not None and (frame.module, frame.marker) == ("lkdtm", "L")
    frame = parse_frame(" __switch_to+0x2b0/0x6e0 (T)", in_trace=False)
    assert frame is not None and frame.marker == "T"


@pytest.mark.parametrize(
    ("text", "source"),
    [
        (
            " dump_stack+0x292/0x395 lib/dump_stack.c:52",
            SourceAnnotation(file="lib/dump_stack.c", line=52),
        ),
        (
            " dump_stack_lvl+0x44/0x5c (lib/dump_stack.c:107)",
            SourceAnnotation(file="lib/dump_stack.c", line=107),
        ),
        (
            " ? kernel_init+0x12/0x40 (init/main.c:1482 (discriminator 4))",
            SourceAnnotation(file="init/main.c", line=1482),
        ),
        (" foo+0x1/0x2 (fs/x.c:10:7)", SourceAnnotation(file="fs/x.c", line=10, column=7)),
    ],
)
def test_source_annotations(text: str, source: SourceAnnotation) -> None:
    frame = parse_frame(text, in_trace=False)
    assert frame is not None and frame.source == source and frame.offset is not None


def test_forms_without_offset_only_count_inside_a_trace() -> None:
    inline = " __dump_stack lib/dump_stack.c:94 [inline]"
    assert parse_frame(inline, in_trace=False) is None
    frame = parse_frame(inline, in_trace=True)
    assert frame is not None and frame.inline and frame.offset is None
    assert frame.symbol == "__dump_stack"
    assert frame.source == SourceAnnotation(file="lib/dump_stack.c", line=94)
    annotated = " ret_from_fork (arch/x86/kernel/process.c:153)"
    assert parse_frame(annotated, in_trace=False) is None
    frame = parse_frame(annotated, in_trace=True)
    assert frame is not None and (frame.symbol, frame.inline) == ("ret_from_fork", False)
    raw = " ? 0xffffffffc0a1b2c3"
    assert parse_frame(raw, in_trace=False) is None
    frame = parse_frame(raw, in_trace=True)
    assert frame is not None and frame.symbol is None and not frame.reliable
    assert frame.runtime_address == 0xFFFFFFFFC0A1B2C3


@pytest.mark.parametrize(
    "text",
    [
        "RIP: 0010:foo+0x1/0x2",
        "WARNING: CPU: 0 PID: 1 at a.c:1 foo+0x1/0x2",
        "caller is debug_smp_processor_id+0x1c/0x20",
        " #0:  (rtnl_mutex){+.+.}, at: [<ffffffff8165a8a0>] rtnl_lock+0x17/0x20",
        "hardirqs last  enabled at (933703): [<ffffffff839f9669>] restore_regs+0x0/0x1d",
        " foo+0x1/0x2 trailing words",
        "Code: 48 89 <0f> 0b",
    ],
)
def test_not_frames(text: str) -> None:
    assert parse_frame(text, in_trace=True) is None


@pytest.mark.parametrize(
    ("text", "register", "segment", "user", "address", "symbol", "exact"),
    [
        ("RIP: 0010:tg_store+0x5/0x10 [tracegen]", "RIP", "0010", False, None, "tg_store", True),
        ("RIP: 0033:0x47b7a0", "RIP", "0033", True, 0x47B7A0, None, True),
        ("RIP: 0010:0xffffffffc0123456", "RIP", "0010", False, 0xFFFFFFFFC0123456, None, True),
        (
            "RIP: 0010:[<ffffffff82d4e304>]  [<ffffffff82d4e304>] __memset+0x24/0x30",
            "RIP",
            "0010",
            False,
            0xFFFFFFFF82D4E304,
            "__memset",
            True,
        ),
        (
            "RIP  [<ffffffff82d4e304>] __memset+0x24/0x30",
            "RIP",
            None,
            False,
            0xFFFFFFFF82D4E304,
            "__memset",
            True,
        ),
        (
            "IP: [<ffffffff82d4e304>] __memset+0x24/0x30",
            "IP",
            None,
            False,
            0xFFFFFFFF82D4E304,
            "__memset",
            True,
        ),
        (
            "RIP: skb_pull+0xd5/0xf0 RSP: ffff8801d9fdf270",
            "RIP",
            None,
            False,
            None,
            "skb_pull",
            True,
        ),
        ("EIP: foo+0x12/0x40", "EIP", None, False, None, "foo", True),
        ("pc : lkdtm_BUG+0x0/0x4 [lkdtm]", "pc", None, False, None, "lkdtm_BUG", True),
        (
            "lr : lkdtm_do_action+0x18/0x2c [lkdtm]",
            "lr",
            None,
            False,
            None,
            "lkdtm_do_action",
            False,
        ),
        ("pc : 0000ffff8c1d2e4c", "pc", None, True, 0xFFFF8C1D2E4C, None, True),
        ("PC is at memset+0x30/0xa8", "PC", None, False, None, "memset", True),
        ("LR is at dup_fd+0x154/0x39c", "LR", None, False, None, "dup_fd", False),
        ("epc : schedule_tail+0x72/0xb2", "epc", None, False, None, "schedule_tail", True),
        (" ra : schedule_tail+0x70/0xb2", "ra", None, False, None, "schedule_tail", False),
        (
            "NIP [c00000000022d79c] partition_sched_domains_locked+0x1ac/0x5f0",
            "NIP",
            None,
            False,
            0xC00000000022D79C,
            "partition_sched_domains_locked",
            True,
        ),
        (
            "Krnl PSW : 0704c00180000000 000000000012345a (foo+0x12/0x40)",
            "PSW",
            None,
            False,
            0x12345A,
            "foo",
            True,
        ),
    ],
)
def test_ip_lines(
    text: str,
    register: str,
    segment: str | None,
    user: bool,
    address: int | None,
    symbol: str | None,
    exact: bool,
) -> None:
    ip = parse_ip(text)
    assert ip is not None
    assert (ip.register, ip.segment, ip.user_mode, ip.exact) == (register, segment, user, exact)
    assert ip.runtime_address == address
    if user:
        assert ip.frame is None
    else:
        assert ip.frame is not None and ip.frame.symbol == symbol


@pytest.mark.parametrize(
    "text",
    [
        "RAX: 0000000000000000 RBX: 0000000000000002",
        "pc : [<c0123456>]    lr : [<c0123456>]    psr: 60000013",
        "epc : ffffffff80001234 ra : ffffffff80005678 sp : ff20000000013d20",
        "IP: something else",
    ],
)
def test_not_ip_lines(text: str) -> None:
    assert parse_ip(text) is None


def test_register_lines() -> None:
    assert parse_registers("RSP: 0018:ff4da52cc040bd68 EFLAGS: 00000206") == (
        ("RSP", 0xFF4DA52CC040BD68),
        ("EFLAGS", 0x206),
    )
    fs = parse_registers(
        "FS:  000000002e7363c0(0000) GS:ff3d447dfea00000(0000) knlGS:0000000000000000"
    )
    assert fs is not None and [name for name, _ in fs] == ["FS", "GS", "knlGS"]
    arm64 = parse_registers("x9 : 0000000000000001 x8 : ffffffde30e0b000 x7 : 205d323437303939")
    assert arm64 is not None and dict(arm64)["x8"] == 0xFFFFFFDE30E0B000
    assert parse_registers("pstate: 60000005 (nZCv daif -PAN -UAO -TCO -DIT -SSBS BTYPE=--)") == (
        ("pstate", 0x60000005),
    )
    arm = parse_registers("pc : [<c0123456>]    lr : [<c0654321>]    psr: 60000013")
    assert arm == (("pc", 0xC0123456), ("lr", 0xC0654321), ("psr", 0x60000013))
    for text in ("CPU: 0 PID: 1 Comm: x", "Hardware name: QEMU", "bd40: 00000000 c0a12345"):
        assert parse_registers(text) is None


def test_x86_code_bytes() -> None:
    text = "Code: " + " ".join(["90"] * 42) + " <0f> 0b " + " ".join(["cc"] * 20)
    code = parse_code(text, 7, None)
    assert code is not None
    assert (code.line, code.arch, code.token_size, code.marker_offset) == (7, "x86_64", 1, 42)
    assert code.data == b"\x90" * 42 + b"\x0f\x0b" + b"\xcc" * 20


def test_arm64_code_words() -> None:
    code = parse_code("Code: d503233f a9be7bfd 910003fd 97fffc81 (d4210000) ", 3, "aarch64")
    assert code is not None and (code.arch, code.token_size, code.marker_offset) == (
        "aarch64",
        4,
        16,
    )
    assert code.data[16:] == bytes.fromhex("000021d4")  # brk #0x800, little-endian in memory
    assert code.data[:4] == bytes.fromhex("3f2303d5")


def test_unreadable_and_garbled_code() -> None:
    code = parse_code("Code: Unable to access opcode bytes at 0xffffffffc03a3fdb.", 1, "x86_64")
    assert code is not None and code.unavailable and code.data == b""
    assert code.unavailable_address == 0xFFFFFFFFC03A3FDB
    bad_rip = parse_code("Code: Bad RIP value.", 1, None)
    assert bad_rip is not None and bad_rip.unavailable and bad_rip.unavailable_address is None
    truncated = parse_code("Code: 48 89 <0f> 0b b8 e", 1, None)
    assert truncated is not None and truncated.data == bytes.fromhex("48890f0bb8")
    assert parse_code("Code: zz", 1, None) is None


def test_make_frame_takes_every_field_of_frame_by_keyword() -> None:
    """The parser's fast builder and the record must not drift apart: same fields, same
    order, every one a keyword, and the record it builds equals the dataclass's own."""
    parameters = inspect.signature(make_frame).parameters
    assert list(parameters) == [field.name for field in dataclasses.fields(Frame)]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    values = {
        "line": 12,
        "raw_text": " ? try_to_wake_up+0x24e/0x2a0 [lkdtm abc]",
        "role": FrameRole.RETURN_ADDRESS,
        "section": StackSection.TASK,
        "reliable": False,
        "symbol": "try_to_wake_up",
        "offset": 0x24E,
        "kallsyms_size": 0x2A0,
        "module": "lkdtm",
        "module_build_id": "abc",
        "runtime_address": 0xFFFFFFFF8106F86E,
        "marker": "P",
        "source": SourceAnnotation(file="kernel/sched/core.c", line=4241, column=2),
        "inline": True,
    }
    assert make_frame(**values) == Frame(**values)
