"""What the oops parser produces: reports, traces, frames, register dumps and ``Code:`` bytes.

Every record keeps the 1-based number of the input line it came from, so a renderer can print
the original text beside the decoded one, and keeps what the kernel printed (``raw_text``) next
to every value read from it. Addresses here are **runtime** addresses (KASLR applied, as the
kernel printed them); ``name+0xOFF/0xSIZE`` is address-space free. Nothing in this module knows
about ELF files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum


class ReportKind(Enum):
    """What started a report; ``is_crash`` tells kernel problems from dumps people asked for."""

    OOPS = "oops"  # x86 die() banners ("Oops: 0002 [#1]", "invalid opcode: 0000 [#1]"), arm64
    # "Internal error: Oops", powerpc/riscv "Oops"
    BUG = "bug"  # "kernel BUG at file:line!", "BUG: <text>" not known more precisely
    PAGE_FAULT = "page_fault"  # "BUG: unable to handle page fault", "BUG: kernel NULL pointer
    # dereference" (x86 arch/x86/mm/fault.c), "Unable to handle kernel ..." (arm, arm64, riscv)
    GENERAL_PROTECTION = "general_protection_fault"
    WARNING = "warning"  # WARN*(): kernel/panic.c __warn()
    KASAN = "kasan"
    UBSAN = "ubsan"
    KCSAN = "kcsan"
    KMSAN = "kmsan"
    KFENCE = "kfence"
    LOCKDEP = "lockdep"  # kernel/locking/lockdep.c reports ("WARNING: possible circular ...")
    PANIC = "panic"  # "Kernel panic - not syncing" with no crash report open before it
    HUNG_TASK = "hung_task"  # kernel/hung_task.c
    RCU_STALL = "rcu_stall"  # kernel/rcu/tree_stall.h
    SOFT_LOCKUP = "soft_lockup"  # kernel/watchdog.c
    HARD_LOCKUP = "hard_lockup"
    MEMORY_LEAK = "memory_leak"  # kmemleak as reported by "BUG: memory leak"
    INFO = "info"  # "INFO: <text>" followed by a stack trace (lockdep's non-static key, ...)
    NMI_BACKTRACE = "nmi_backtrace"  # lib/nmi_backtrace.c, and arm64 "sysrq: CPU1:" (IPI)
    SYSRQ_SHOW_STATE = "sysrq_show_state"  # sysrq t: one trace per task
    SYSRQ_SHOW_BLOCKED = "sysrq_show_blocked"  # sysrq w: one trace per blocked task
    DUMP_STACK = "dump_stack"  # dump_stack() with no report header (warn_alloc, oom-killer)
    GENERIC = "generic"  # a stack trace whose header is unknown or was lost

    @property
    def is_crash(self) -> bool:
        """True for kernel problems; False for dumps that only show where CPUs or tasks are.

        NMI backtraces, sysrq dumps, plain ``dump_stack()`` output (allocation failures, the
        OOM killer) and traces without a recognized header are not crashes by themselves.
        """
        return self not in _NOT_CRASH


_NOT_CRASH = frozenset(
    {
        ReportKind.NMI_BACKTRACE,
        ReportKind.SYSRQ_SHOW_STATE,
        ReportKind.SYSRQ_SHOW_BLOCKED,
        ReportKind.DUMP_STACK,
        ReportKind.GENERIC,
    }
)


class StackSection(Enum):
    """Which stack a frame was found on, from x86 ``<IRQ>``/``</IRQ>``-style markers.

    arch/x86/kernel/dumpstack.c (6.1) prints `` <%s>`` when the unwinder enters a stack and
    `` </%s>`` when it leaves it, with the names of ``stack_type_name()``; kernels before 4.9
    printed ``<IRQ>``/``<EOI>`` and ``<NMI>``/``<EOE>``. Other architectures print no markers:
    their frames are ``UNKNOWN``, as are IP lines printed outside a stack walk.
    """

    TASK = "TASK"
    IRQ = "IRQ"
    SOFTIRQ = "SOFTIRQ"
    NMI = "NMI"
    EXCEPTION = "EXCEPTION"  # #DF, #MC, #DB, #VC, ENTRY_TRAMPOLINE, SYSENTER stacks
    UNKNOWN = "UNKNOWN"


class FrameRole(Enum):
    """How to look a frame's address up (docs/kernel-facts.md#return-addresses).

    ``EXACT_IP``: the address of the instruction itself (``RIP:``, ``pc :``, the IP of a pt_regs
    block printed inside a trace, the ``WARNING: ... at`` header, NMI "idling at", an arm64
    ``(P)`` entry or the first arm64 entry that repeats ``pc``). ``RETURN_ADDRESS``: the
    instruction after a call (every other trace entry, ``lr :``, ``LR is at``); look up the
    call before it (x86 ``%pB`` prints it so that ``address - 1`` names the caller; arm64 entries
    are ``%pS``, the call is at ``address - 4``).
    """

    EXACT_IP = "exact_ip"
    RETURN_ADDRESS = "return_address"


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceAnnotation:
    """A ``file:line`` printed after a frame (already-symbolized logs, WARNING headers)."""

    file: str
    line: int
    column: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One code address as the log shows it.

    ``symbol``/``offset``/``kallsyms_size`` are the printed ``name+0xOFF/0xSIZE`` (the size is
    the kallsyms size, distance to the next kallsyms symbol; docs/kernel-facts.md#printed-names);
    ``runtime_address`` is a raw ``[<ffffffff81234567>]`` or ``RIP: 0010:0x...`` when printed.
    A frame with ``inline=True`` came from an already-symbolized log (``__dump_stack
    lib/dump_stack.c:94 [inline]``): it has no offset and shares the next physical frame's role.
    """

    line: int
    raw_text: str
    role: FrameRole
    section: StackSection
    reliable: bool  # False for x86 "? " entries, powerpc "(unreliable)", s390 "(...)" entries
    symbol: str | None
    offset: int | None
    kallsyms_size: int | None
    module: str | None
    module_build_id: str | None
    runtime_address: int | None
    marker: str | None = None  # arm64 "(P)", "(L)", "(T)", "(PF)"... without parentheses
    source: SourceAnnotation | None = None
    inline: bool = False

    @property
    def exact_ip(self) -> bool:
        return self.role is FrameRole.EXACT_IP

    @property
    def is_return_address(self) -> bool:
        return self.role is FrameRole.RETURN_ADDRESS


# The parser makes one Frame per trace entry, and a frozen dataclass's generated __init__
# assigns every field through object.__setattr__ (its own __setattr__ refuses), which costs as
# much as the rest of parsing the entry. make_frame() builds the same record by calling the slot
# descriptors directly: every field given by keyword (tests/test_parse_frames.py checks that its
# parameters are the record's fields); no defaults are applied.
_new_object = object.__new__
_FRAME_SLOTS = Frame.__dict__
_set_line = _FRAME_SLOTS["line"].__set__
_set_raw_text = _FRAME_SLOTS["raw_text"].__set__
_set_role = _FRAME_SLOTS["role"].__set__
_set_section = _FRAME_SLOTS["section"].__set__
_set_reliable = _FRAME_SLOTS["reliable"].__set__
_set_symbol = _FRAME_SLOTS["symbol"].__set__
_set_offset = _FRAME_SLOTS["offset"].__set__
_set_kallsyms_size = _FRAME_SLOTS["kallsyms_size"].__set__
_set_module = _FRAME_SLOTS["module"].__set__
_set_module_build_id = _FRAME_SLOTS["module_build_id"].__set__
_set_runtime_address = _FRAME_SLOTS["runtime_address"].__set__
_set_marker = _FRAME_SLOTS["marker"].__set__
_set_source = _FRAME_SLOTS["source"].__set__
_set_inline = _FRAME_SLOTS["inline"].__set__


def make_frame(
    *,
    line: int,
    raw_text: str,
    role: FrameRole,
    section: StackSection,
    reliable: bool,
    symbol: str | None,
    offset: int | None,
    kallsyms_size: int | None,
    module: str | None,
    module_build_id: str | None,
    runtime_address: int | None,
    marker: str | None,
    source: SourceAnnotation | None,
    inline: bool,
) -> Frame:
    """``Frame(...)`` with every field given, about twice as fast (see the comment above)."""
    frame: Frame = _new_object(Frame)
    _set_line(frame, line)
    _set_raw_text(frame, raw_text)
    _set_role(frame, role)
    _set_section(frame, section)
    _set_reliable(frame, reliable)
    _set_symbol(frame, symbol)
    _set_offset(frame, offset)
    _set_kallsyms_size(frame, kallsyms_size)
    _set_module(frame, module)
    _set_module_build_id(frame, module_build_id)
    _set_runtime_address(frame, runtime_address)
    _set_marker(frame, marker)
    _set_source(frame, source)
    _set_inline(frame, inline)
    return frame


@dataclass(frozen=True, slots=True, kw_only=True)
class IpLine:
    """An instruction-pointer line: ``RIP: 0010:sym+off/size``, ``pc : ...``, ``lr : ...``.

    ``register`` is the name as printed (``RIP``, ``EIP``, ``IP``, ``pc``, ``lr``, ``PC``, ``LR``,
    ``NIP``, ``epc``, ``ra``, ``PSW``). ``segment`` is the x86 code segment selector: ``0010``
    is kernel mode, ``0033``/``0023`` user mode. A user-mode IP is not a kernel frame: its
    ``frame`` is None (its ``runtime_address`` is a user address).
    """

    line: int
    raw_text: str
    register: str
    segment: str | None
    user_mode: bool
    runtime_address: int | None
    frame: Frame | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeBytes:
    """A ``Code:`` line as bytes in memory order, with the faulting instruction marked.

    x86 prints 42 bytes before the IP, ``<xx>`` at it and 21 after (arch/x86/kernel/
    dumpstack.c ``show_opcodes``); arm64 prints five 32-bit words, the faulting one in
    parentheses (arch/arm64/kernel/traps.c ``dump_kernel_instr``), which are stored here
    little-endian as the instructions sit in memory. ``marker_offset`` is the byte offset of the
    marked instruction in ``data``. When the kernel could not read the bytes (``Code: Unable to
    access opcode bytes at 0x...``) ``data`` is empty and ``unavailable`` is True.
    """

    line: int
    raw_text: str
    data: bytes
    marker_offset: int | None
    arch: str  # "x86_64", "i386", "aarch64", "arm", "riscv64" or "unknown"
    token_size: int  # bytes per printed token: 1 (x86), 2 (Thumb/RVC), 4 (arm64/arm words)
    unavailable: bool = False
    unavailable_address: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterDump:
    """One register dump: an IP line with the register lines and ``Code:`` printed with it.

    The main dump of an oops comes before its Call Trace; x86 also prints the pt_regs of every
    interrupt or exception frame (and the user registers at the syscall entry) inside the trace
    (arch/x86/kernel/dumpstack.c ``show_regs_if_on_stack``): those have ``inside_trace=True``.
    """

    first_line: int
    last_line: int
    ip: IpLine | None
    registers: tuple[tuple[str, int], ...]
    code: CodeBytes | None
    inside_trace: bool

    @property
    def user_mode(self) -> bool:
        return self.ip is not None and self.ip.user_mode

    def register(self, name: str) -> int | None:
        for register_name, value in self.registers:
            if register_name == name:
                return value
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """One stack walk: a Call Trace, a KASAN "Allocated by task" stack, one sysrq-t task...

    ``kind`` names what the trace is (see :data:`TRACE_KINDS` in :mod:`ltosyms.oops.headers`):
    ``call_trace``, ``task`` (with ``comm``/``pid``/``task_state``), ``allocated``, ``freed``,
    ``regs`` (an IP line re-printed after the trace ended), ... ``title`` is the line that named
    it. ``<IRQ>``...``</IRQ>`` parts are sections of one trace, not separate traces.
    """

    kind: str
    title: str | None
    first_line: int
    last_line: int
    frames: tuple[Frame, ...]
    comm: str | None = None
    pid: int | None = None
    task_state: str | None = None
    # Entries read past limits.MAX_TRACE_FRAMES: counted, not kept (more than any stack holds).
    frames_not_kept: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """One report found in a log: a crash, a warning, a sysrq dump, an NMI backtrace...

    ``first_line``/``last_line`` are 1-based input lines of the header and of the last line
    that belongs to the report. ``caller`` is the printk caller id (``T123``, ``C1``) the report
    was printed under, when the log has them. ``release``/``kernel_version``/``taint``/
    ``build_id`` come from the ``CPU: 0 PID: 1 Comm: x Tainted: G W 6.1.0-57-cloud-amd64 #1
    <build id>`` line (lib/dump_stack.c ``dump_stack_print_info``; the build id is printed with
    ``CONFIG_STACKTRACE_BUILD_ID``). ``kaslr_offset`` comes from a ``Kernel Offset: 0x...
    from 0xffffffff81000000`` line (arch/x86/kernel/setup.c dump_kernel_offset; 0 when it says
    ``disabled``). ``panic_message`` is the text after ``Kernel panic - not syncing:`` when the
    report ended in a panic.
    """

    kind: ReportKind
    title: str
    first_line: int
    last_line: int
    caller: str | None
    cpu: int | None
    pid: int | None
    comm: str | None
    release: str | None
    kernel_version: str | None
    taint: str | None  # the taint letters without spaces ("GWOE"), "" when "Not tainted"
    build_id: str | None
    hardware: str | None
    modules_linked_in: tuple[str, ...]
    arch: str | None
    ip_lines: tuple[IpLine, ...]
    register_dumps: tuple[RegisterDump, ...]
    traces: tuple[Trace, ...]
    kaslr_offset: int | None
    panic_message: str | None

    @property
    def is_crash(self) -> bool:
        return self.kind.is_crash

    @property
    def main_dump(self) -> RegisterDump | None:
        """The first kernel-mode register dump (the oops registers), else the first dump."""
        for dump in self.register_dumps:
            if not dump.user_mode and (dump.ip is not None or dump.registers):
                return dump
        return self.register_dumps[0] if self.register_dumps else None

    @property
    def registers(self) -> tuple[tuple[str, int], ...]:
        dump = self.main_dump
        return dump.registers if dump is not None else ()

    @property
    def code(self) -> CodeBytes | None:
        """The ``Code:`` bytes printed for the kernel-mode IP (``Code:`` after a user-mode
        ``RIP: 0033:`` shows user code and is not returned here)."""
        for dump in self.register_dumps:
            if dump.code is not None and not dump.user_mode:
                return dump.code
        return None

    def iter_frames(self) -> Iterator[Frame]:
        """Every frame of every trace, in input order."""
        for trace in self.traces:
            yield from trace.frames
