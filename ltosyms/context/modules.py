"""Find and open the kernel modules a log names (``[zram]``, ``[lkdtm <build id>]``).

``--modules DIR`` folders are searched recursively, as ``/lib/modules/R`` or
``/usr/lib/debug/lib/modules/R`` are laid out. Module names use ``_`` where file names may use
``-`` (``snd-hda-intel.ko`` is module ``snd_hda_intel``), and files may be compressed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ltosyms.context.image import ImageContext
from ltosyms.context.session import Session
from ltosyms.errors import InputError, MismatchError

log = logging.getLogger(__name__)

MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst", ".ko.debug")


def module_name_of(path: Path) -> str | None:
    """The module name a file holds (``snd-hda-intel.ko.xz`` -> ``snd_hda_intel``)."""
    name = path.name
    for suffix in MODULE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("-", "_")
    return None


class ModuleSet:
    """Modules found under some folders, opened through ``session`` on first use (with its
    index configuration; a session without an index when none is given) and kept open."""

    def __init__(
        self, folders: Iterable[str | os.PathLike[str]] = (), session: Session | None = None
    ) -> None:
        self.session = session if session is not None else Session(None)
        self._paths: dict[str, list[Path]] = {}
        self._loaded: dict[str, ImageContext | None] = {}
        self._errors: dict[str, str] = {}
        for folder in folders:
            self.add_folder(Path(folder))

    @classmethod
    def from_paths(
        cls, paths: Iterable[str | os.PathLike[str]], session: Session | None = None
    ) -> ModuleSet:
        """Modules from folders (searched recursively) and single module files."""
        modules = cls(session=session)
        for given in paths:
            path = Path(given)
            if path.is_file():
                modules.add_file(path)
            elif path.exists():
                modules.add_folder(path)
            else:
                raise InputError(f"{given}: no such file or directory (--modules)")
        return modules

    def add_folder(self, folder: Path) -> None:
        if not folder.is_dir():
            raise InputError(f"{folder}: not a directory (--modules takes a folder)")
        for root, _dirs, files in os.walk(folder, followlinks=False):
            for file_name in files:
                path = Path(root) / file_name
                name = module_name_of(path)
                if name is not None:
                    self._paths.setdefault(name, []).append(path)

    def add_file(self, path: Path) -> None:
        name = module_name_of(path)
        if name is None:
            raise InputError(f"{path}: not a module file name (*.ko, *.ko.xz, ...)")
        self._paths.setdefault(name, []).insert(0, path)

    def add_named(self, name: str, path: Path) -> None:
        """A module file whose name does not tell the module (a debuginfod cache entry)."""
        self._paths.setdefault(name.replace("-", "_"), []).insert(0, path)

    def __contains__(self, name: str) -> bool:
        return name.replace("-", "_") in self._paths

    @property
    def names(self) -> list[str]:
        return sorted(self._paths)

    def error_for(self, name: str) -> str | None:
        return self._errors.get(name.replace("-", "_"))

    def get(self, name: str, build_id: str | None = None) -> ImageContext | None:
        """The module ``name``; with ``build_id``, the file whose build id is that one.

        Several files may carry one module name (a debug tree and a plain tree); prefer the one
        with DWARF. A printed build id that no file has raises :class:`MismatchError`.
        """
        key = name.replace("-", "_")
        cache_key = f"{key}@{build_id or ''}"
        if cache_key in self._loaded:
            return self._loaded[cache_key]
        chosen: ImageContext | None = None
        seen_ids = []
        for path in self._paths.get(key, ()):
            try:
                loaded = self.session.open_module(path)
            except InputError as error:
                log.warning("%s", error)
                self._errors[key] = str(error)
                continue
            seen_ids.append(loaded.build_id)
            if build_id and loaded.build_id and loaded.build_id != build_id:
                continue
            if chosen is None or (loaded.image.has_dwarf() and not chosen.image.has_dwarf()):
                chosen = loaded
        if chosen is None and build_id and seen_ids:
            raise MismatchError(
                f"module {name}: the log prints build id {build_id}, the files found have "
                f"{', '.join(str(i) for i in seen_ids)}"
            )
        self._loaded[cache_key] = chosen
        return chosen
