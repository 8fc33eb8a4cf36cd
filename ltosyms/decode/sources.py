"""Where the vmlinux and modules for a log come from when the user names no vmlinux.

In order: a release given with ``-r`` or printed in the log (``CPU: 0 PID: 1 Comm: sh Not
tainted 6.1.0-57-cloud-amd64 #1``) looked up where distros install debug images
(:mod:`ltosyms.locate`); the build ids the log prints (``CONFIG_STACKTRACE_BUILD_ID``) fetched
from debuginfod servers (:mod:`ltosyms.debuginfod`). Modules printed with a build id
(``[lkdtm <build id>]``) that no ``--modules`` folder has are fetched the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ltosyms.context import ModuleSet
from ltosyms.debuginfod import DebuginfodClient, DebuginfodConfig
from ltosyms.errors import CacheError, InputError, LtosymsError
from ltosyms.locate import locate_kernel
from ltosyms.oops.records import Report

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FoundKernel:
    vmlinux: Path
    how: str  # one line for the user: where it was found
    module_dirs: tuple[Path, ...]


def log_identity(reports: Iterable[Report]) -> tuple[str | None, str | None]:
    """The first kernel release and vmlinux build id the reports print."""
    release = build_id = None
    for report in reports:
        release = release or report.release
        build_id = build_id or report.build_id
    return release, build_id


def find_kernel(
    reports: list[Report],
    release: str | None,
    debuginfod: DebuginfodConfig | None,
    root: Path = Path("/"),
) -> FoundKernel:
    """The vmlinux for these reports (see the module docstring), or :class:`InputError`."""
    printed_release, build_id = log_identity(reports)
    release = release or printed_release
    problems: list[str] = []
    if release is not None:
        try:
            found = locate_kernel(release, root, build_id)
            return FoundKernel(found.vmlinux, f"found for {release}", found.module_dirs)
        except InputError as error:
            problems.append(str(error))
    if debuginfod is not None and debuginfod.urls and build_id is not None:
        try:
            fetched = DebuginfodClient(debuginfod).fetch(build_id)
            how = "from the debuginfod cache" if fetched.from_cache else f"from {fetched.url}"
            return FoundKernel(fetched.path, f"build id {build_id} {how}", ())
        except CacheError:
            raise  # an unwritable cache is the cache's problem (exit 4), not a missing file
        except LtosymsError as error:
            problems.append(str(error))
    if not problems:
        raise InputError(
            "no vmlinux given, and the log prints no kernel release"
            + (" or build id" if debuginfod is not None and debuginfod.urls else "")
            + ": give the vmlinux path or -r RELEASE"
        )
    raise InputError("; ".join(problems))


def fetch_modules(
    reports: list[Report], modules: ModuleSet, debuginfod: DebuginfodConfig | None
) -> list[str]:
    """Fetch from debuginfod the modules the log prints with a build id that ``modules`` lacks.

    Returns warnings (one line each) for the modules that could not be had.
    """
    if debuginfod is None or not debuginfod.urls:
        return []
    wanted: dict[str, str] = {}
    for report in reports:
        for frame in report.iter_frames():
            if frame.module and frame.module_build_id and frame.module not in modules:
                wanted.setdefault(frame.module, frame.module_build_id)
    warnings = []
    client = DebuginfodClient(debuginfod)
    for name, build_id in sorted(wanted.items()):
        try:
            fetched = client.fetch(build_id)
        except LtosymsError as error:
            warnings.append(f"module {name}: {error}")
            continue
        modules.add_named(name, fetched.path)
    return warnings
