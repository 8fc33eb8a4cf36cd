"""Images opened for decoding and what is kept about them between runs.

- :class:`ImageContext`: one vmlinux or module with its symbol table, DWARF resolver,
  call-site finder, build facts and patch tables, and its index (open, save, close).
- :class:`Session`: the images of one run, opened with one cache configuration, saved and
  closed together.
- :class:`ModuleSet`: module files found under folders, opened through a session.
"""

from ltosyms.context.image import ImageContext
from ltosyms.context.modules import MODULE_SUFFIXES, ModuleSet, module_name_of
from ltosyms.context.session import Session

__all__ = ["MODULE_SUFFIXES", "ImageContext", "ModuleSet", "Session", "module_name_of"]
