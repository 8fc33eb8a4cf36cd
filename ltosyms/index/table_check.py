"""A table file's checksum, taken ahead of its first use in a thread of its own.

An index table is checked whole against its CRC-32 before any of it is used, the first time
after it is written (later runs skip the sum while the file's stamp holds, see
:mod:`ltosyms.index.store`). The sum reads every page of the file (the Debian 6.1 address
table is 27.6 MB: 12 ms), where a short decode's lookups touch a few hundred kilobytes. zlib
lets go of the interpreter lock while it sums, so a thread started when the image's index is
opened takes the sum on the other core while this one opens the image and parses the log.

The thread makes one call over the whole mapping: each time it took the lock back (to sum a
MiB at a time, say) it would wait up to the interpreter's switch interval (5 ms) for a busy
main thread, and finish long after the table is wanted.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

AHEAD_BYTES = 1 << 20  # smaller tables are summed when first used: a thread costs more


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MappedTable:
    """A table file mapped read-only: its payload, the CRC-32 its header gives, the stamp of
    the file (None while too new to have one), and whether the file is the one last found
    intact (no sum needed). Compared by identity: its payload is a mapping of megabytes."""

    path: Path
    payload: memoryview
    crc: int
    stamp: str | None
    found_intact: bool

    def checksum(self) -> int:
        """The CRC-32 of the payload."""
        return zlib.crc32(self.payload)


class ChecksumAhead:
    """A table's checksum, taken in a thread started at once."""

    __slots__ = ("_error", "_sum", "_table", "_thread")

    def __init__(self, table: MappedTable) -> None:
        """RuntimeError when no thread can be started."""
        self._table = table
        self._sum: int | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="table-checksum", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._sum = self._table.checksum()
        except BaseException as error:  # raised where the sum is asked for, not printed here
            self._error = error

    def result(self) -> int:
        """The sum, once the thread has taken it (its error, if it failed); taken here when
        the thread is gone without either, as in a process forked while it ran (the diff
        census forks its workers)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._sum if self._sum is not None else self._table.checksum()

    def result_if_done(self) -> int | None:
        """The sum if the thread has taken it by now, else None (without waiting)."""
        return None if self._thread.is_alive() else self._sum
