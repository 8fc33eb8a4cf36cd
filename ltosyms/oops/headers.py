"""Which lines start, continue or end a report, and what names a trace: rules kept as data.

Each :class:`HeaderRule` row names the kernel code that prints the header. Rules are tried in
order on the kernel message text (prefixes removed, surrounding blanks stripped); the first
match wins.

Two properties decide how a header interacts with a report already open in the same context:

- ``continues``: headers that are the second line of one report. ``BUG: unable to handle page
  fault`` is followed by ``Oops: 0002 [#1]`` (arch/x86/mm/fault.c, then die()); ``kernel BUG
  at`` by ``invalid opcode: 0000 [#1]`` or arm64 ``Internal error: Oops - BUG``; ``Unable to
  handle kernel ...`` by ``Internal error: Oops``. Such a header continues an open report of one
  of the listed kinds that has no stack entries yet, instead of starting another.
- ``weak``: generic ``WARNING: <text>``, ``INFO: <text>`` and slab ``BUG <cache> (...)`` lines
  are also printed by code that reports nothing (``WARNING: the mand mount option is being
  deprecated``, ``INFO: NMI handler took too long to run``, ``INFO: lockdep is turned off.``).
  A weak header never interrupts an open crash report, and its report is kept only if a stack
  entry, an IP line or a ``CPU: ... PID: ... Comm:`` line follows. Specific headers (the
  ``WARNING: CPU: N PID: N at`` form, lockdep's titles, ``BUG: KASAN:``...) are not weak.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ltosyms.oops.records import ReportKind
from ltosyms.oops.remembered import remembered_texts

K = ReportKind
_FAULTS = frozenset({K.PAGE_FAULT, K.BUG, K.OOPS, K.GENERAL_PROTECTION})


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderRule:
    """A line that starts (or ends) a report, and the kernel code that prints it."""

    kind: ReportKind | None  # None: a boundary that ends the open report and starts none
    pattern: str  # a regular expression, matched at the start of the text with ``flags``
    flags: int = 0
    origin: str  # the kernel code that prints it
    weak: bool = False
    continues: frozenset[ReportKind] = frozenset()
    continuation_only: bool = False  # never starts a report; only continues one
    panic: bool = False  # "Kernel panic - not syncing": attaches to an open crash report

    @property
    def literal_start(self) -> str:
        """What every text the rule matches starts with ("" when the pattern does not
        start with plain characters, ignores case or is verbose)."""
        if self.flags & (re.IGNORECASE | re.VERBOSE):
            return ""
        return literal_start(self.pattern)


def literal_start(pattern: str) -> str:
    """The plain characters every match of ``pattern`` starts with: up to its first special
    character, less the one before a quantifier; "" when it has alternatives at its top level
    (``abc|def``: a match may start either way)."""
    if _has_top_level_alternatives(pattern):
        return ""
    end = 0
    while end < len(pattern) and pattern[end] not in _SPECIAL:
        end += 1
    if end < len(pattern) and pattern[end] in _QUANTIFIERS:
        end -= 1  # "ab?": only "a" is certain
    return pattern[: max(end, 0)]


def _has_top_level_alternatives(pattern: str) -> bool:
    depth = 0
    in_class = False
    characters = iter(pattern)
    for character in characters:
        if character == "\\":
            next(characters, None)  # an escaped character is plain
        elif in_class:
            in_class = character != "]"
        elif character == "[":
            in_class = True
            # "[]...]" and "[^]...]": a "]" first in the class is one of its characters.
            following = next(characters, "")
            if following == "^":
                following = next(characters, "")
            if following == "\\":
                next(characters, None)
        elif character == "(":
            depth += 1
        elif character == ")":
            depth -= 1
        elif character == "|" and depth == 0:
            return True
    return False


_SPECIAL = frozenset("\\.^$*+?{}[]|()")
_QUANTIFIERS = frozenset("*+?{")


# Frames inside headers: "WARNING: CPU: 1 PID: 174 at drivers/misc/lkdtm/bugs.c:85
# lkdtm_WARNING+0xa/0x10 [lkdtm]" (kernel/panic.c __warn, 6.1: "WARNING: CPU: %d PID: %d at
# %pS\n" with file:line before; "%pS()" before 4.12 printed "()" after the symbol).
_WARNING_FRAME = r"(?P<frame>[\w.$@~]+\+0x[0-9a-f]+(?:/0x[0-9a-f]+)?(?: \[[^\]]+\])?)(?:\(\))?"


def _rule(
    kind: ReportKind | None,
    pattern: str,
    origin: str,
    *,
    weak: bool = False,
    continues: frozenset[ReportKind] = frozenset(),
    continuation_only: bool = False,
    panic: bool = False,
    flags: int = 0,
) -> HeaderRule:
    return HeaderRule(
        kind=kind,
        pattern=pattern,
        flags=flags,
        origin=origin,
        weak=weak,
        continues=continues,
        continuation_only=continuation_only,
        panic=panic,
    )


HEADER_RULES: tuple[HeaderRule, ...] = (
    _rule(K.KASAN, r"BUG: KASAN: (?P<detail>.*)", "mm/kasan/report.c print_error_description"),
    _rule(K.KASAN, r"BUG: AddressSanitizer: ", "KASAN before 4.4"),
    _rule(K.KCSAN, r"BUG: KCSAN: ", "kernel/kcsan/report.c print_report"),
    _rule(K.KMSAN, r"BUG: KMSAN: ", "mm/kmsan/report.c kmsan_report"),
    _rule(K.KFENCE, r"BUG: KFENCE: ", "mm/kfence/report.c kfence_report_error"),
    _rule(K.MEMORY_LEAK, r"BUG: memory leak", "syzkaller's kmemleak scan (mm/kmemleak.c)"),
    _rule(
        K.MEMORY_LEAK,
        r"unreferenced object 0x[0-9a-f]+ \(size \d+\):",
        "mm/kmemleak.c print_unreferenced",
        continues=frozenset({K.MEMORY_LEAK}),
    ),
    _rule(
        K.PAGE_FAULT,
        r"BUG: (?:unable to handle (?:kernel|page fault)|kernel NULL pointer dereference)",
        "arch/x86/mm/fault.c show_fault_oops; powerpc bad_page_fault",
        flags=re.IGNORECASE,
    ),
    _rule(
        K.SOFT_LOCKUP,
        r"(?:NMI )?(?:watchdog: )?BUG: soft lockup",
        "kernel/watchdog.c watchdog_timer_fn ('NMI watchdog: ' before 4.16)",
    ),
    _rule(
        K.LOCKDEP,
        r"(?:WARNING|INFO|BUG): (?:possible (?:recursive locking|circular locking dependency|"
        r"irq lock inversion dependency|deadlock)|inconsistent lock state|suspicious RCU usage|"
        r"bad unlock balance|bad contention|held lock freed|lock held when returning to user "
        r"space|nested lock was not taken|[\w-]+-safe -> [\w-]+-unsafe lock order detected|"
        r"\S+ still has locks held|trying to register non-static key|lock held by \S+ is freed)",
        "kernel/locking/lockdep.c (print_circular_bug_header, print_usage_bug, ...)",
        flags=re.IGNORECASE,
    ),
    _rule(
        K.BUG,
        r"BUG: ",
        "BUG: lines of many subsystems (sleeping function called from "
        "invalid context, scheduling while atomic, Bad page state, ...)",
    ),
    _rule(
        K.BUG,
        r"BUG [\w.:-]+ \((?:Not tainted|Tainted: [^)]*)\): ",
        "mm/slub.c slab_bug",
        weak=True,
    ),
    _rule(
        K.BUG,
        r"kernel BUG at ",
        "include/asm-generic/bug.h BUG() via report_bug",
        flags=re.IGNORECASE,
    ),
    _rule(
        K.GENERAL_PROTECTION,
        r"(?:Oops: )?general protection fault",
        "arch/x86/kernel/traps.c exc_general_protection (6.9+ prefixes 'Oops: ')",
    ),
    _rule(
        K.GENERAL_PROTECTION,
        r"KASAN: (?:null-ptr-deref|maybe wild-memory-access|probably user-memory-access) in "
        r"range",
        "arch/x86/mm/kasan_init_64.c kasan_non_canonical_hook, after the GPF line",
        continues=frozenset({K.GENERAL_PROTECTION}),
        continuation_only=True,
    ),
    _rule(
        K.OOPS, r"Oops\b", "x86 die() 'Oops: %04lx [#%d]'; powerpc/riscv 'Oops'", continues=_FAULTS
    ),
    _rule(
        K.OOPS,
        r"[a-z][a-z0-9_ ()/-]*: [0-9a-f]{4} \[#\d+\]",
        "arch/x86/kernel/dumpstack.c __die_header '%s: %04lx [#%d]' (invalid opcode, int3, ...)",
        continues=_FAULTS,
    ),
    _rule(K.OOPS, r"PANIC: double fault", "arch/x86/kernel/traps.c exc_double_fault"),
    _rule(
        K.OOPS,
        r"Internal error: ",
        "arch/arm64/kernel/traps.c die; arch/arm/kernel/traps.c",
        continues=_FAULTS,
    ),
    _rule(
        K.PAGE_FAULT,
        r"Unable to handle kernel ",
        "arch/arm64/mm/fault.c die_kernel_fault; arm, riscv, s390 fault handlers",
    ),
    _rule(
        K.HARD_LOCKUP,
        r"(?:NMI watchdog: |watchdog: )?Watchdog detected hard LOCKUP",
        "kernel/watchdog_hld.c watchdog_overflow_callback",
    ),
    _rule(
        K.HUNG_TASK,
        r"INFO: task (?P<comm>.+):(?P<pid>\d+) (?:blocked for more than|can't die for more than)",
        "kernel/hung_task.c check_hung_task",
    ),
    _rule(
        K.RCU_STALL,
        r"(?:rcu: )?INFO: rcu[\w]* (?:self-)?detected (?:expedited )?stalls?",
        "kernel/rcu/tree_stall.h print_cpu_stall / print_other_cpu_stall",
    ),
    _rule(K.LOCKDEP, r"\[ (?:INFO|BUG): .+ \]$", "lockdep before 4.10: '[ INFO: ... ]' banners"),
    _rule(K.UBSAN, r"UBSAN: ", "lib/ubsan.c ubsan_prologue"),
    _rule(
        K.WARNING,
        rf"WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at (?P<file>\S+?):(?P<line>\d+) "
        rf"{_WARNING_FRAME}\s*$",
        "kernel/panic.c __warn (up to 6.16)",
    ),
    _rule(
        K.WARNING,
        rf"WARNING: (?P<file>\S+?):(?P<line>\d+) at {_WARNING_FRAME}, CPU#(?P<cpu>\d+): "
        r"(?P<comm>.+)/(?P<pid>\d+)\s*$",
        "kernel/panic.c __warn, newer form",
    ),
    _rule(
        K.WARNING,
        rf"WARNING: at (?P<file>\S+?):(?P<line>\d+) {_WARNING_FRAME}\s*$",
        "kernel/panic.c warn_slowpath_common before 3.12",
    ),
    _rule(
        K.WARNING,
        r"WARNING: CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at ",
        "kernel/panic.c __warn, IP not symbolic",
    ),
    _rule(
        K.NMI_BACKTRACE,
        rf"NMI backtrace for cpu (?P<cpu>\d+)(?: skipped: idling at {_WARNING_FRAME})?\s*$",
        "lib/nmi_backtrace.c nmi_cpu_backtrace",
    ),
    _rule(
        K.NMI_BACKTRACE,
        r"sysrq: CPU(?P<cpu>\d+):$",
        "drivers/tty/sysrq.c showacpu (arm64 without pseudo-NMI)",
    ),
    _rule(
        K.SYSRQ_SHOW_STATE,
        r"(?:sysrq: |SysRq : )+Show State",
        "drivers/tty/sysrq.c sysrq_handle_showstate",
    ),
    _rule(
        K.SYSRQ_SHOW_BLOCKED,
        r"(?:sysrq: |SysRq : )+Show Blocked State",
        "drivers/tty/sysrq.c sysrq_handle_showstate_blocked",
    ),
    _rule(None, r"(?:sysrq: |SysRq : )", "drivers/tty/sysrq.c __handle_sysrq: a new command"),
    _rule(
        K.PANIC,
        r"Kernel panic - not syncing:? ?(?P<message>.*)$",
        "kernel/panic.c panic",
        panic=True,
    ),
    _rule(K.LOCKDEP, r"INFO: trying to register non-static key", "lockdep register_lock_class"),
    _rule(
        K.WARNING,
        r"WARNING: kernel stack (?:regs|frame pointer) at ",
        "arch/x86/kernel/unwind_frame.c unwind_next_frame: bad frame pointer",
    ),
    _rule(
        K.BUG,
        r"VFS: (?:Busy inodes after unmount|Close: file count is 0)",
        "fs/super.c generic_shutdown_super; fs/file_table.c",
    ),
    _rule(
        K.BUG,
        r"unregister_netdevice: waiting for \S+ to become free",
        "net/core/dev.c netdev_wait_allrefs",
    ),
    _rule(K.INFO, r"INFO: ", "INFO: lines of many subsystems", weak=True),
    _rule(K.WARNING, r"WARNING: ", "WARNING: lines of many subsystems", weak=True),
)

# Cheap pre-filter: a line can only be a header if it starts like one (or is an x86 die banner).
HEADER_STARTS = (
    "BUG",
    "kernel BUG",
    "Kernel BUG",
    "general protection",
    "Oops",
    "KASAN:",
    "Internal error:",
    "Unable to handle",
    "watchdog:",
    "NMI watchdog:",
    "Watchdog detected",
    "INFO:",
    "rcu: INFO:",
    "[ INFO:",
    "[ BUG:",
    "UBSAN:",
    "WARNING:",
    "NMI backtrace",
    "sysrq:",
    "SysRq :",
    "Kernel panic",
    "PANIC: double fault",
    "unreferenced object",
    "VFS: ",
    "unregister_netdevice: waiting",
)


def match_header(text: str) -> tuple[HeaderRule, re.Match[str]] | None:
    """The first rule matching ``text`` (stripped message text), with its match."""
    if not text.startswith(HEADER_STARTS) and "[#" not in text:
        return None
    return _first_rule(text)


@remembered_texts(maxsize=1024)  # the rules, a few dozen expressions, once per header text
def _first_rule(text: str) -> tuple[HeaderRule, re.Match[str]] | None:
    for rule, start, position in _RULE_STARTS:
        if not text.startswith(start):
            continue
        pattern = _COMPILED[position]
        if pattern is None:
            pattern = _COMPILED[position] = re.compile(rule.pattern, rule.flags)
        match = pattern.match(text)
        if match is not None:
            return rule, match
    return None


# Each rule with its literal start, and its expression compiled when a text that starts so
# first reaches it: a process compiles the few rules its log's headers need, not all
# forty-odd (4-5 ms of every decode's start-up).
_RULE_STARTS = tuple(
    (rule, rule.literal_start, position) for position, rule in enumerate(HEADER_RULES)
)
_COMPILED: list[re.Pattern[str] | None] = [None] * len(HEADER_RULES)


# --- other report lines ---------------------------------------------------------------------

# lib/dump_stack.c dump_stack_print_info (6.1): "CPU: %d PID: %d Comm: %.20s %s%s %s %.*s"
# BUILD_ID_FMT: comm, "Kdump: loaded ", print_tainted(), release, version up to its first
# space, and " %20phN" with CONFIG_STACKTRACE_BUILD_ID. 6.10+ adds "UID: %u". Distributions
# append their own version string (Debian: "#1  Debian 6.1.192-3").
CPU_LINE = re.compile(
    r"CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>.*?) "
    r"(?:Kdump: loaded )?(?:Not tainted|Tainted: (?P<flags>[A-Z ]*?))\s+"
    r"(?P<release>\S*\d\S*)(?: (?P<version>#\S+))?(?:\s+(?P<rest>.*?))?\s*$"
)
CPU_LINE_SHORT = re.compile(
    r"CPU: (?P<cpu>\d+) (?:UID: \d+ )?PID: (?P<pid>\d+) Comm: (?P<comm>\S+)"
)
BUILD_ID = re.compile(r"(?:^|\s)(?P<build_id>[0-9a-f]{40})$")


@remembered_texts(maxsize=1024)  # every dump_stack() prints one
def match_cpu_line(text: str) -> re.Match[str] | None:
    """The CPU line's match (CPU_LINE, else CPU_LINE_SHORT), None when ``text`` is none."""
    return CPU_LINE.match(text) or CPU_LINE_SHORT.match(text)


# kernel/hung_task.c: "      Tainted: %s %s %.*s"; lockdep before 4.10: "%s %.*s %s" (release,
# version, taint).
TAINT_LINE = re.compile(
    r"(?:Not tainted|Tainted: (?P<flags>[A-Z ]*?))\s+(?P<release>\S*\d\S*) (?P<version>#\S+)"
)
RELEASE_TAINT_LINE = re.compile(
    r"(?P<release>\d\S*) (?P<version>#\S+) (?:Not tainted|Tainted: (?P<flags>[A-Z ]*?))\s*$"
)
HARDWARE_LINE = re.compile(r"Hardware name: (?P<name>.*?)\s*$")
MODULES_LINE = re.compile(r"Modules linked in:(?P<modules>.*)$")
KERNEL_OFFSET = re.compile(r"Kernel Offset: (?:0x(?P<offset>[0-9a-f]+) from|disabled)")
# kernel/sched/core.c sched_show_task (5.14+): "task:%-15.15s state:%c" then "stack:%-5lu
# pid:%-5d ..."; before: "%-15.15s %c" + stack free, pid, ppid, flags (matched on the text
# with its leading columns intact).
TASK_LINE = re.compile(
    r"task:(?P<comm>.{1,15}?)\s*state:(?P<state>\S+)(?:.*?\bpid:\s*(?P<pid>\d+))?"
)
OLD_TASK_LINE = re.compile(
    r"(?P<comm>\S.{14}) (?P<state>[A-Za-z])\s*(?:running task|[0-9a-f]{8,16})?\s*"
    r"(?P<free>\d+)\s+(?P<pid>\d+)\s+(?P<ppid>\d+)\s+0x[0-9a-f]+\s*$"
)
CALL_TRACE = re.compile(r"(?:Call [Tt]race|Backtrace):\s*(.*)$")  # group 1: the rest
SECTION_MARKER = re.compile(r"<(?P<close>/?)(?P<name>[A-Z#][A-Z0-9_#]*)>\s*(?P<rest>.*)$")
END_TRACE = "---[ end trace"
END_PANIC = "---[ end Kernel panic"
BANNER = re.compile(r"={20,}\s*$")
# Lines printed after an oops's "---[ end trace ]---" that still belong to it.
CLOSING_LINES = (
    "note: ",
    "Dumping ftrace buffer",
    "(ftrace buffer empty)",
    "Disabling lock debugging",
    "Fixing recursive fault",
    "Rebooting in",
)

# What names a trace: the line right before its first entry. Unknown titles give "stack".
TRACE_KINDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (r"(?:Call [Tt]race|Backtrace|stack backtrace):", "call_trace"),  # dumpstack, lockdep
        (r"(?:kfence-#\d+: .*)?(?:Allocated|allocated) by task", "allocated"),  # KASAN, KFENCE
        (r"(?:kfence-#\d+: .*)?(?:Freed|freed) by task", "freed"),
        (r"(?:Last|Second to last) potentially related work creation", "work_creation"),
        (r"(?:Last|Second to last) call_rcu\(\)", "call_rcu"),
        (r"Uninit was stored to memory at", "uninit_stored"),  # KMSAN
        (r"(?:Uninit was created at|Local variable .* created at)", "uninit_created"),
        (r"(?:read|write)[-\w ()]* to 0x[0-9a-f]+ of \d+ bytes by", "access"),  # KCSAN
        (r"(?:Out-of-bounds|Use-after-free|Invalid|Corrupted memory)\b.* at 0x", "access"),
        (r"page last allocated via", "page_allocated"),  # page_owner
        (r"page last free", "page_freed"),
        (r"-> #\d+ ", "lock_chain"),  # lockdep dependency chain
        (
            r"(?:\.\.\. .*|[A-Z-]+(?:-[RW])? |INITIAL (?:READ )?USE |\{.*\} state was registered )"
            r"at:",
            "lock_usage",
        ),
        (r"backtrace(?: \(crc [0-9a-f]+\))?:", "leak_backtrace"),  # kmemleak
        (r"Preemption disabled at:", "preemption_disabled"),
        (r"Last Breaking-Event-Address:", "last_breaking_event"),  # s390
    )
)


def trace_kind(title: str) -> str:
    for pattern, kind in TRACE_KINDS:
        if pattern.match(title):
            return kind
    return "stack"


def is_trace_title(text: str) -> bool:
    """Whether a line right before a trace entry names a new trace."""
    if text.endswith(":"):
        return True
    return any(pattern.match(text) for pattern, _ in TRACE_KINDS)
