"""Rust symbol names: which names are Rust's (``_R...``, the v0 scheme the kernel's Rust code
uses, and legacy ``_ZN...E``) and how people read them.

The demangler itself (:mod:`ltosyms.names.rust_mangling`) loads with the first Rust name: the
C names of a kernel never start so, and a decode of them does not import it.
"""

from __future__ import annotations


def is_rust_name(name: str) -> bool:
    """Cheap test for names worth demangling (kernel C names never start so)."""
    return name.startswith(("_R", "_ZN"))


def demangle(name: str) -> str | None:
    """The demangled Rust name, or None when ``name`` is not a Rust symbol."""
    if not is_rust_name(name):
        return None
    from ltosyms.names.rust_mangling import demangle as demangle_mangled

    return demangle_mangled(name)
