"""Show DWARF file paths relative to the kernel source tree, as users expect.

decode_stacktrace.sh strips the build's prefix and prints ``lib/dump_stack.c``; drgn does the
same. DWARF holds the path as the compiler saw it: relative to ``DW_AT_comp_dir`` when the
build maps its prefix away (Debian: comp_dir ``debian/build/build_amd64_none_cloud-amd64``,
files ``lib/dump_stack.c``), or absolute, in a source tree that is not the build directory
(``make O=...``: comp_dir ``/build/lb/kernels/build-clang-thinlto``, files
``/build/lb/kernels/src/linux-source-6.1/include/linux/sched.h``).

The source tree root is recognized from the unit's own file table: the most common prefix of
its paths before ``/include/linux/`` or ``/arch/`` names it. A path under the compilation
directory (generated headers of an out-of-tree build) or under a source root loses that
prefix; any other path (compiler headers such as ``stdarg.h`` under ``/usr/lib/gcc``) stays
as it is.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterable

_MARKERS = ("/include/linux/", "/arch/")


def root_candidate(path: str) -> str | None:
    """The part of ``path`` before its kernel-tree marker (``/include/linux/``, ``/arch/``):
    ``""`` when the path starts with ``include/linux/`` itself, None without a marker."""
    probe = path if path.startswith("/") else "/" + path
    for marker in _MARKERS:
        at = probe.rfind(marker)
        if at >= 0:
            return path[:at] if path.startswith("/") else path[: max(at - 1, 0)]
    return None


def choose_roots(comp_dir: str | None, candidates: Counter[str]) -> tuple[str, ...]:
    """The compilation directory and the most common source root, longest first."""
    roots = []
    if comp_dir:
        roots.append(posixpath.normpath(comp_dir))
    candidates.pop("", None)
    if candidates:
        roots.append(candidates.most_common(1)[0][0])
    return tuple(sorted(set(roots), key=len, reverse=True))


def source_roots(comp_dir: str | None, paths: Iterable[str | None]) -> tuple[str, ...]:
    """Prefixes to strip, longest first: the compilation directory and the source root.
    ``paths`` are the unit's full file paths."""
    found: Counter[str] = Counter()
    for path in paths:
        candidate = root_candidate(path) if path else None
        if candidate:
            found[candidate] += 1
    return choose_roots(comp_dir, found)


def relative_path(full_path: str | None, roots: tuple[str, ...]) -> str | None:
    """``full_path`` without the first (longest) root it lies under."""
    if full_path is None:
        return None
    for root in roots:
        if root in (".", ""):
            continue
        if full_path.startswith(root) and full_path[len(root) : len(root) + 1] == "/":
            return full_path[len(root) + 1 :]
    return full_path
