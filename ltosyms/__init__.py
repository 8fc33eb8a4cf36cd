"""ltosyms: readable kernel crashes, symbol diffs and kallsyms checks for LTO kernels.

The package is a library first; :mod:`ltosyms.cli` is a thin click layer over it.
"""

# The one place the version is written (pyproject.toml reads it): a literal, because asking
# importlib.metadata costs every run of the command a noticeable part of its start-up.
__version__ = "0.1.0"

__all__ = ["__version__"]
