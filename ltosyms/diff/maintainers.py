"""The kernel's MAINTAINERS file: which subsystem a source file belongs to.

The format (MAINTAINERS, "Descriptions of section entries") is a title line followed by
``X: value`` lines. Only the file-selecting ones matter here:

- ``F:`` file and directory patterns: ``*`` and ``?`` are wildcards, a trailing slash takes
  everything below, a pattern without one takes files of that directory level only;
- ``X:`` the same patterns, excluded (tested before ``F:``);
- ``N:`` regular expressions searched anywhere in the path.

A file can match several sections; the most specific one wins, as scripts/get_maintainer.pl
(6.1, ``get_maintainers()``) ranks them: an ``F:`` match ranks by the pattern's depth (its
slashes, plus one when it does not end in a slash; a pattern starting with ``*`` ranks -1),
an ``N:`` match ranks 0. get_maintainer.pl lists ties in no fixed order; here the section that
comes first in the file wins them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ltosyms.errors import InputError

_ENTRY = re.compile(r"([A-Z]):\s*(.*)")


@dataclass(frozen=True, slots=True, kw_only=True)
class FilePattern:
    """One ``F:`` or ``X:`` value, translated as get_maintainer.pl ``read_maintainer_file()``
    does (``.`` literal, ``*`` any run of characters, ``?`` any one)."""

    text: str  # as written in MAINTAINERS
    regex: re.Pattern[str]
    is_directory: bool  # ends in a slash: everything below it
    depth: int  # get_maintainer.pl's $value_pd for this pattern
    literal: bool  # no wildcard: may name a directory written without its slash

    @classmethod
    def parse(cls, text: str) -> FilePattern:
        converted = text.replace(".", r"\.").replace("*", ".*").replace("?", ".")
        depth = converted.count("/") + (0 if converted.endswith("/") else 1)
        if converted.startswith(".*"):
            depth = -1
        try:
            regex = re.compile("^" + converted)
        except re.error as error:
            raise InputError(f"MAINTAINERS pattern {text!r} is not usable: {error}") from None
        return cls(
            text=text,
            regex=regex,
            is_directory=converted.endswith("/"),
            depth=depth,
            literal=not any(c in text for c in "*?"),
        )

    def match_depth(self, path: str) -> int | None:
        """This pattern's rank if it selects ``path`` (get_maintainer.pl
        ``file_match_pattern()``), else None."""
        if self.regex.match(path) is None:
            return None
        if self.is_directory:
            return self.depth
        if path.count("/") == self.text.count("/"):
            return self.depth
        if self.literal and path.startswith(self.text + "/"):
            # read_maintainer_file() appends the slash to a pattern naming a directory of the
            # tree (`-d $value`); a file below it proves that it is one.
            return self.depth
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Subsystem:
    """One MAINTAINERS section: its title and the entries that select files."""

    name: str
    files: tuple[FilePattern, ...]
    excluded: tuple[FilePattern, ...]
    regexes: tuple[re.Pattern[str], ...]

    def rank(self, path: str) -> int | None:
        """How specifically this section selects ``path`` (None: it does not)."""
        if any(pattern.match_depth(path) is not None for pattern in self.excluded):
            return None
        ranks = [depth for p in self.files if (depth := p.match_depth(path)) is not None]
        if any(regex.search(path) for regex in self.regexes):
            ranks.append(0)
        return max(ranks) if ranks else None


class Maintainers:
    """The sections of a MAINTAINERS file, and the subsystem of a path."""

    def __init__(self, subsystems: Iterable[Subsystem], path: str = "MAINTAINERS") -> None:
        self.subsystems = tuple(subsystems)
        self.path = path
        self._known: dict[str, str | None] = {}

    def subsystem_of(self, path: str) -> str | None:
        """The title of the most specific section selecting ``path`` (a source-relative
        path such as ``kernel/sched/core.c``), None when no section does."""
        if path in self._known:
            return self._known[path]
        best: tuple[int, int] | None = None
        for order, subsystem in enumerate(self.subsystems):
            rank = subsystem.rank(path)
            if rank is not None and (best is None or rank > best[0]):
                best = (rank, order)
        name = self.subsystems[best[1]].name if best is not None else None
        self._known[path] = name
        return name


def parse_maintainers(lines: Iterable[str], path: str = "MAINTAINERS") -> Maintainers:
    """Sections are runs of ``X:`` lines under a title line; blank and ``#`` lines are
    skipped, as get_maintainer.pl ``read_maintainer_file()`` skips them."""
    subsystems: list[Subsystem] = []
    title: str | None = None
    entries: list[tuple[str, str]] = []

    def close() -> None:
        if title is not None and entries:
            subsystems.append(_subsystem(title, entries))

    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            close()
            title, entries = line.strip(), []
        elif title is not None:
            entries.append((match.group(1), match.group(2).strip()))
    close()
    if not any(s.files or s.regexes for s in subsystems):
        raise InputError(f"{path}: no MAINTAINERS section with F: or N: entries")
    return Maintainers(subsystems, path)


def read_maintainers(path: str | Path) -> Maintainers:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"{path}: {error.strerror or error}") from None
    return parse_maintainers(text.splitlines(), str(path))


def _subsystem(title: str, entries: list[tuple[str, str]]) -> Subsystem:
    regexes = []
    for letter, value in entries:
        if letter != "N":
            continue
        try:
            # get_maintainer.pl matches N: with the /x modifier: white space is not literal.
            regexes.append(re.compile(value, re.VERBOSE))
        except re.error as error:
            raise InputError(f"MAINTAINERS {title}: N: {value!r}: {error}") from None
    return Subsystem(
        name=title,
        files=tuple(FilePattern.parse(value) for letter, value in entries if letter == "F"),
        excluded=tuple(FilePattern.parse(value) for letter, value in entries if letter == "X"),
        regexes=tuple(regexes),
    )
