"""Symbol name knowledge: the suffix grammar and the kernel's kallsyms rules."""
