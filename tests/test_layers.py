"""The layers of the library import downwards only, read from the source (every import
statement, also those inside functions and ``TYPE_CHECKING`` blocks).

Lowest first: what every layer may use (errors, bounds, the memo protocol); the stages that
read files and text and compute records; the persistence layer (the only one that sees
bytes of stored values); the image contexts that wire stages to their stored answers; the
commands' pipelines; the renderers; the command line.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from conftest import PROJECT

PACKAGE = PROJECT / "ltosyms"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "limits", "stores", "lazy"),
    ("names", "oops", "dwarf", "elf", "disasm", "debuginfod_transfer"),
    ("index",),
    ("context",),
    ("decode", "diff", "kallsyms_check", "locate", "debuginfod"),
    ("render",),
    ("cli", "__main__", "launch"),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def part_of(path: Path) -> str:
    """The top-level module or package of ``ltosyms`` that ``path`` belongs to."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def imported_parts(path: Path) -> set[str]:
    """The top-level parts of ``ltosyms`` that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module] if node.module != "ltosyms" else []
        found.update(name.split(".")[1] for name in names if name.startswith("ltosyms."))
    return found


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.parent == PACKAGE and path.name == "__init__.py":
            continue  # the package's own lazy exports name the layers it offers
        part = part_of(path)
        graph.setdefault(part, set()).update(imported_parts(path) - {part})
    return graph


def test_every_part_of_the_library_has_a_layer() -> None:
    assert set(edges()) - {"__init__"} <= set(RANK)


def test_no_layer_imports_a_higher_one() -> None:
    upward = sorted(
        f"{part} -> {used}"
        for part, used_parts in edges().items()
        for used in used_parts
        if RANK[used] > RANK[part]
    )
    assert upward == []


def test_no_two_parts_import_each_other() -> None:
    try:
        order = list(TopologicalSorter(edges()).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {error.args[1]}") from None
    assert order.index("stores") < order.index("index") < order.index("context")
    assert order.index("context") < order.index("decode") < order.index("cli")


# Where the library asks an object what it has instead of what its type says, and why. Stores
# and images are reached through their typed protocols (ltosyms.stores, names.kallsyms): a
# new entry here needs a reason of the same kind.
ATTRIBUTE_PROBES = {
    "lazy.py": "PEP 562 lazy exports (the packages' __getattr__)",
    "dwarf/__init__.py": "PEP 562 lazy exports (its own: the DWARF layer imports no helper)",
    "disasm/decoder.py": "capstone 5 and 6 name the arm64 architecture differently",
    "debuginfod_transfer.py": "the TLS context urllib's HTTPSHandler keeps privately",
    "index/codecs.py": "the array fields a unit record declares by name",
    "index/census_codec.py": "the group columns declared by their field names",
    "dwarf/address_table.py": "the unit and chain-map columns concatenated by their field names",
    "index/store.py": "sqlite3 sets sqlite_errorcode only on errors SQLite itself reports",
    "oops/lines.py": "a log is text, bytes, a binary file or an iterable of lines",
    "render/kallsyms_check_text.py": "the table's columns declared as attribute names",
}


def test_attribute_probes_are_the_listed_ones() -> None:
    probing = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("hasattr", "getattr")
            ):
                probing.add(path.relative_to(PACKAGE).as_posix())
    assert probing == set(ATTRIBUTE_PROBES)
