"""ltosyms: readable kernel crashes, symbol diffs and kallsyms checks for LTO kernels.

The package is a library first; :mod:`ltosyms.cli` is a thin click layer over it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ltosyms")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
