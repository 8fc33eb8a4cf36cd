"""Which architecture a kallsyms dump or System.map comes from, by the names it lists.

Addresses cannot tell (they may be hidden, and KASLR moves them); the system call entry points
can: since Linux 4.17 (x86-64) and 4.19 (arm64) every system call has an architecture-prefixed
wrapper (CONFIG_ARCH_HAS_SYSCALL_WRAPPER), and a kernel has a few hundred of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

# (name prefix, ELF machine as KernelImage names it), one row per wrapper family.
SYSCALL_WRAPPERS: tuple[tuple[str, str], ...] = (
    # arch/x86/include/asm/syscall_wrapper.h __X64_SYS_STUBx (and __IA32_SYS_STUBx for
    # IA32_EMULATION on a 64-bit kernel)
    ("__x64_sys_", "x86_64"),
    ("__ia32_sys_", "x86_64"),
    # arch/arm64/include/asm/syscall_wrapper.h __SYSCALL_DEFINEx
    ("__arm64_sys_", "aarch64"),
)
# Names of one family a dump must list before it counts as evidence: a handful could be
# leftovers in a hand-made list; a real kernel has hundreds.
MINIMUM_EVIDENCE = 20


def dump_machine(names: Iterable[str]) -> tuple[str | None, int]:
    """The machine the names point to and how many wrapper names say so (None: no family
    reaches :data:`MINIMUM_EVIDENCE`)."""
    votes: Counter[str] = Counter()
    for name in names:
        if name.startswith("__"):
            for prefix, machine in SYSCALL_WRAPPERS:
                if name.startswith(prefix):
                    votes[machine] += 1
                    break
    if not votes:
        return None, 0
    machine, count = votes.most_common(1)[0]
    return (machine, count) if count >= MINIMUM_EVIDENCE else (None, count)
