"""A run's images, opened with one cache configuration, saved and closed together."""

from __future__ import annotations

import os
from pathlib import Path

from ltosyms.context.image import ImageContext
from ltosyms.elf.image import ImageKind
from ltosyms.index.store import CacheLocation


class Session:
    """Opens the vmlinux and modules of one run as :class:`ImageContext`\\ s, each once, all
    with the index under ``cache`` (None: no index, everything is worked out again), and saves
    and closes them together.

    ::

        with Session(cache_location()) as session:
            vmlinux = session.open_vmlinux("vmlinux")
    """

    def __init__(self, cache: CacheLocation | None) -> None:
        self.cache = cache
        self._contexts: dict[tuple[str, ImageKind], ImageContext] = {}

    def open_vmlinux(self, path: str | os.PathLike[str]) -> ImageContext:
        """The vmlinux at ``path``: :class:`~ltosyms.errors.InputError` unless it is one."""
        return self._open(path, ImageKind.VMLINUX)

    def open_module(self, path: str | os.PathLike[str]) -> ImageContext:
        """The kernel module at ``path`` (``.ko``, possibly compressed)."""
        return self._open(path, ImageKind.MODULE)

    def _open(self, path: str | os.PathLike[str], kind: ImageKind) -> ImageContext:
        key = (os.path.realpath(Path(path)), kind)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = ImageContext.open(
                path, expect=kind, cache=self.cache, answering_addresses=True
            )
        return context

    @property
    def contexts(self) -> list[ImageContext]:
        """Every image opened so far, in the order opened."""
        return list(self._contexts.values())

    def save(self) -> None:
        """Write what every image's parts worked out to its index."""
        for context in self._contexts.values():
            context.save()

    def close(self) -> None:
        """Save and release every index."""
        for context in self._contexts.values():
            context.close()
        self._contexts.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
