"""One exception hierarchy for the whole library.

Every error a user can cause (bad file, bad log, wrong vmlinux, unusable cache) is an
:class:`LtosymsError`. The CLI prints ``str(error)`` as one line and exits with
``error.exit_code``; nothing else ever reaches the user as a traceback unless ``-v`` is given.
"""

from __future__ import annotations


class LtosymsError(Exception):
    """Root of every error ltosyms raises on purpose."""

    exit_code = 2


class InputError(LtosymsError):
    """A file or text given by the user cannot be used (not ELF, truncated, no symtab, ...)."""

    exit_code = 2


class DwarfError(InputError):
    """The DWARF of an image cannot be decoded (truncated, unknown form, bad offset, ...)."""

    exit_code = 2


class UsageError(LtosymsError):
    """Arguments that do not fit together."""

    exit_code = 2


class MismatchError(LtosymsError):
    """The vmlinux (or module) is not the build the log or dump came from."""

    exit_code = 3


class CacheError(LtosymsError):
    """The on-disk index cannot be used (unwritable, locked, foreign)."""

    exit_code = 4


class CheckFailed(LtosymsError):
    """A ``--fail-on`` condition holds: the CI-gate outcome, not a malfunction."""

    exit_code = 1


class QueriesFailed(LtosymsError):
    """Some queries of a batch (``symbolize``) could not be answered; each printed its own
    error line, the others were answered."""

    exit_code = 1
