"""The DWARF layer's import rules, read from the source (every import statement, also those
inside functions and ``TYPE_CHECKING`` blocks).

``ltosyms.dwarf`` reads the sections it is handed and knows nothing of the ELF file, the index,
the decoder or the commands: it imports only itself, the error hierarchy and the store
protocols. The rest of the library uses it through ``ltosyms.dwarf`` (its ``__init__``), never
through one of its modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import PROJECT

PACKAGE = PROJECT / "ltosyms"
ALLOWED_IN_DWARF = ("ltosyms.dwarf", "ltosyms.errors", "ltosyms.limits", "ltosyms.stores")


def imported_modules(path: Path) -> list[str]:
    """Every module ``path`` imports, relative imports made absolute."""
    package = ".".join(path.relative_to(PROJECT).with_suffix("").parts[:-1])
    modules = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from ltosyms.dwarf import forms` imports a module too: name it.
            modules += [f"{base}.{alias.name}" for alias in node.names]
    return modules


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_dwarf_layer_imports_only_itself_errors_limits_and_stores() -> None:
    files = sorted((PACKAGE / "dwarf").glob("*.py"))
    assert len(files) >= 15
    outside = [
        f"{path.name}: {module}"
        for path in files
        for module in imported_modules(path)
        if is_within(module, "ltosyms")
        and not any(is_within(module, allowed) for allowed in ALLOWED_IN_DWARF)
    ]
    assert outside == []


def test_the_rest_of_the_library_imports_the_dwarf_package_not_its_modules() -> None:
    # `from ltosyms.dwarf import DwarfResolver` names `ltosyms.dwarf.DwarfResolver`: allowed
    # when the package exports the name.
    import ltosyms.dwarf

    exported = set(ltosyms.dwarf.__all__)
    files = [
        path for path in PACKAGE.rglob("*.py") if "dwarf" not in path.relative_to(PACKAGE).parts
    ]
    inside = [
        f"{path.relative_to(PACKAGE)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.startswith("ltosyms.dwarf.")
        and module.removeprefix("ltosyms.dwarf.") not in exported
    ]
    assert len(files) > 50
    assert inside == []
