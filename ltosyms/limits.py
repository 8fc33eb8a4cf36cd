"""Bounds on what ltosyms takes from untrusted input, in one place.

Every file and stream a user gives (an image, a log, a debuginfod answer) may be damaged or
made to hurt: a name that never ends, a line that never ends, a compressed stream that inflates
without end. Each bound below is far above the largest value real kernels show -- measured on
the corpus with ``tools/limits_census.py``, the numbers are in the comments -- and far below
what would exhaust a machine. Input beyond a bound is a one-line
:class:`~ltosyms.errors.InputError` (exit 2), or, where the rest of the input is still worth
reading, is cut and counted with a warning; the README's "Bad input" table lists which.
"""

from __future__ import annotations

# -- images -------------------------------------------------------------------------------------

# Largest image held in memory: a compressed one is inflated there (an uncompressed one is
# mapped, read only where used). The largest real image in the corpus is Debian 6.1's debug
# vmlinux, 590 MB with its .rela.debug_* sections.
MAX_IMAGE_BYTES = 4 << 30

# How many times its compressed size a compressed image or section may inflate to, once it is
# past MIN_INFLATE_BYTES. The corpus' vmlinux.xz files are at most 6.3 times smaller than
# their vmlinux, its modules at most 5.3 times with xz -6 and 3.6 times with gzip -9, and the
# DWARF sections of its vmlinux files at most 8.7 times with zlib -9. Small sections go
# further: a clang module's .debug_str_offsets is zeros until relocated (297 times, 38 KB),
# hence the floor, below which any ratio is accepted. A compression bomb of zeros inflates
# 1,000 times (gzip) to 7,000 times (xz).
MAX_COMPRESSION_RATIO = 64
MIN_INFLATE_BYTES = 64 << 20

# -- DWARF ------------------------------------------------------------------------------------

# How deep DIEs may nest where an inlined subroutine opens (deeper is a one-line DWARF error:
# the frame keeps its symbol, without source lines). Every level can become an entry of an
# inline chain, so damaged data must not make chains of thousands of entries. The deepest
# nesting of the corpus' kernels and modules (gcc 12, clang 14, LTO or not, x86-64 and arm64,
# Debian's distribution kernel included) is 29 DIEs with 17 inlined subroutines inside one
# another; 256 is far beyond what a compiler emits.
MAX_INLINE_DEPTH = 256

# How many DW_AT_abstract_origin / DW_AT_specification hops a name or a declaration may take,
# within a unit or across units (DW_FORM_ref_addr). Real chains are 1-3 long (inlined instance
# -> abstract instance -> declaration); a longer one means a reference cycle in bad data.
MAX_NAME_HOPS = 8

# -- symbol tables ------------------------------------------------------------------------------

# Longest symbol name read from .strtab; longer ones are cut there, with a warning. kallsyms
# keeps names shorter than KSYM_NAME_LEN (512 since 6.1, include/linux/kallsyms.h;
# scripts/kallsyms.c read_symbol() skips longer ones), so no oops prints a longer name. The
# longest name in the corpus images is 76 bytes.
MAX_SYMBOL_NAME_BYTES = 4096

# Bytes of names a .strtab may yield per byte of itself; beyond, the table is refused. Names
# share bytes where a linker lets one name end inside another (binutils bfd/elf-strtab.c
# merges suffixes): the corpus images yield at most 1.59x (the arm64 vmlinux, whose 57,316
# $x/$d mapping symbols share two strings). Name offsets that make every name run over the
# same bytes (a damaged or hostile table) would yield gigabytes from a few megabytes.
MAX_NAME_BYTES_PER_STRTAB_BYTE = 4

# -- logs ---------------------------------------------------------------------------------------

# Longest line kept; the rest of a longer line is counted and ignored. printk formats a record
# into at most 1024 bytes (CONSOLE_LOG_MAX, kernel/printk/printk.c 6.1) before the console
# prefixes; the longest line in the corpus logs (the 747 syzkaller logs included) is 8,333
# characters, a syzkaller program line, not a kernel one.
MAX_LINE_CHARS = 64 * 1024

# Input lines and characters one report may span. A longer report is handed out at that
# point, as a report that goes quiet is (the lines that follow start a new one), so memory
# follows these bounds, not the log. The largest report in the corpus logs spans 822 lines (a
# Debian sysrq-t dump of 62 tasks, 13 lines a task: the bound is a dump of ~38,000 tasks) and
# 48,393 characters (a syzkaller KASAN report).
MAX_REPORT_LINES = 500_000
MAX_REPORT_CHARS = 64 << 20

# Entries one stack trace keeps; entries past it are counted (Trace.frames_not_kept), their
# lines printed as read and not decoded. A trace prints at most one entry per word of the
# stacks it walks: on x86-64 the task stack (16 KB, 32 KB with KASAN: THREAD_SIZE_ORDER and
# KASAN_STACK_ORDER, arch/x86/include/asm/page_64_types.h), the IRQ stack (16 KB) and the
# exception stacks (a few 4-8 KB ones), under 8,192 words together; arm64's task, IRQ,
# overflow and SDEI stacks are of the same order. The longest trace in the corpus logs is 701
# entries (a syzkaller report).
MAX_TRACE_FRAMES = 16_384

# Digits of a decimal number read from a log (a CPU, PID or line number): a u64 has at most
# 20, and Python refuses to convert more than 4,300 (sys.get_int_max_str_digits).
MAX_DECIMAL_DIGITS = 20
