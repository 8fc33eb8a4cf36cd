"""Find the debug vmlinux and the module trees of a kernel release where distros install them.

A user with a log and a release string (``uname -r``, or the ``CPU: ... Comm: ...`` line of an
oops) but no vmlinux path expects the tool to look where the distribution's debug packages put
the files, as ``scripts/decode_stacktrace.sh`` and crash(8) do:

================================================  =============================================
``/usr/lib/debug/boot/vmlinux-R``                 Debian/Ubuntu ``linux-image-*-dbg(sym)``
``/usr/lib/debug/lib/modules/R/vmlinux``          Fedora/RHEL ``kernel-debuginfo``
``/usr/lib/debug/boot/vmlinux-R.debug``           openSUSE ``kernel-*-debuginfo`` (debug part)
``/boot/vmlinux-R``                               kernels installed by ``make install``/custom
``/lib/modules/R/build/vmlinux``                  the build tree a self-built kernel points to
================================================  =============================================

Module debug files live in ``/usr/lib/debug/lib/modules/R/`` (Debian, Ubuntu, Fedora) and the
modules themselves in ``/lib/modules/R/``; both are returned, debug tree first.

A candidate that exists but cannot be used (stripped, not ELF, a module, another build) is
skipped with its reason, so ``/boot/vmlinux-R`` without symbols does not hide a debug image
further down the list. ``root`` lets tests (and users inspecting a mounted system image) move
the whole search under another directory.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ltosyms.elf.kernel import load_vmlinux
from ltosyms.errors import InputError

log = logging.getLogger(__name__)

# Where a vmlinux for release R may be, best first: debug packages carry DWARF, the others may
# be stripped. Each row is a path relative to the search root; "{R}" is the release.
VMLINUX_PATHS: tuple[str, ...] = (
    "usr/lib/debug/boot/vmlinux-{R}",  # Debian/Ubuntu -dbg/-dbgsym packages
    "usr/lib/debug/lib/modules/{R}/vmlinux",  # Fedora/RHEL kernel-debuginfo
    "usr/lib/debug/boot/vmlinux-{R}.debug",  # openSUSE kernel-*-debuginfo
    "boot/vmlinux-{R}",  # make install, some distros' unstripped images
    "lib/modules/{R}/build/vmlinux",  # the build tree of a self-built kernel
)

# Where the modules of release R are, debug files first (docs/kernel-facts.md#kaslr-and-modules:
# Debian ships module debug info under /usr/lib/debug/lib/modules/<release>/).
MODULE_TREE_PATHS: tuple[str, ...] = (
    "usr/lib/debug/lib/modules/{R}",
    "lib/modules/{R}",
)

# init_utsname()->release is at most 64 characters (include/uapi/linux/utsname.h,
# __NEW_UTS_LEN). Real releases use letters, digits and ". _ + ~ -" ("6.1.0-57-cloud-amd64",
# "5.14.0-362.8.1.el9_3.x86_64", "6.8.0-rc1+"). Anything else (a "/" above all) would let a
# release string walk out of the directories we mean to search.
_RELEASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SkippedCandidate:
    """A path that was looked at and not used, with the reason (one line)."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KernelFiles:
    """The debug files found for one kernel release."""

    release: str
    vmlinux: Path
    build_id: str | None
    has_dwarf: bool
    module_dirs: tuple[Path, ...]  # existing module trees, debug tree first
    skipped: tuple[SkippedCandidate, ...]  # candidates before ``vmlinux`` that were not usable


def validate_release(release: str) -> str:
    """Return ``release`` if it looks like a kernel release string, else raise InputError."""
    if not _RELEASE.fullmatch(release):
        raise InputError(f"{release!r} is not a kernel release string (like 6.1.0-57-cloud-amd64)")
    return release


def vmlinux_candidates(release: str, root: Path = Path("/")) -> tuple[Path, ...]:
    """Every path where a vmlinux for ``release`` may be, best first (existing or not)."""
    validate_release(release)
    return tuple(root / pattern.format(R=release) for pattern in VMLINUX_PATHS)


def module_dirs(release: str, root: Path = Path("/")) -> tuple[Path, ...]:
    """The module trees of ``release`` that exist, debug tree first."""
    validate_release(release)
    trees = (root / pattern.format(R=release) for pattern in MODULE_TREE_PATHS)
    return tuple(tree for tree in trees if tree.is_dir())


def locate_kernel(release: str, root: Path = Path("/"), build_id: str | None = None) -> KernelFiles:
    """Find a usable vmlinux (and the module trees) for ``release``.

    A candidate is usable when :func:`~ltosyms.elf.kernel.load_vmlinux` accepts it (a kernel
    ELF with a symbol table) and, if ``build_id`` is given (the one printed in the log), its
    build id is that one.
    Raises :class:`InputError` listing every place looked at when none is usable.
    """
    validate_release(release)
    skipped: list[SkippedCandidate] = []
    for path in vmlinux_candidates(release, root):
        outcome = _examine(path, build_id)
        if isinstance(outcome, SkippedCandidate):
            skipped.append(outcome)
            log.debug("vmlinux candidate %s skipped: %s", path, outcome.reason)
            continue
        log.info("vmlinux for %s: %s", release, path)
        return KernelFiles(
            release=release,
            vmlinux=path,
            build_id=outcome.build_id,
            has_dwarf=outcome.has_dwarf,
            module_dirs=module_dirs(release, root),
            skipped=tuple(skipped),
        )
    looked = ", ".join(f"{item.path} ({item.reason})" for item in skipped)
    wanted = f" with build id {build_id}" if build_id else ""
    raise InputError(
        f"no usable vmlinux{wanted} for release {release}; looked at: {looked}; "
        "install the kernel's debug package or give the vmlinux path"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Usable:
    build_id: str | None
    has_dwarf: bool


def _examine(path: Path, build_id: str | None) -> _Usable | SkippedCandidate:
    """Open ``path`` as a vmlinux: what it offers, or why it cannot serve."""
    if not path.exists():
        return SkippedCandidate(path=path, reason="missing")
    try:
        loaded = load_vmlinux(path)
    except InputError as error:
        # The ELF layer's messages start with the path; keep only what is wrong with it.
        message = str(error)
        prefix = f"{path}: "
        return SkippedCandidate(path=path, reason=message.removeprefix(prefix))
    with loaded.image as image:
        usable = _Usable(build_id=image.build_id, has_dwarf=image.has_dwarf())
    if build_id is not None and usable.build_id != build_id.lower():
        return SkippedCandidate(
            path=path,
            reason=f"build id {usable.build_id or 'none'}, the log has {build_id.lower()}",
        )
    return usable
