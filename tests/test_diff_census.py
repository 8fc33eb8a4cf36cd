"""The whole-image DWARF census, against llvm-dwarfdump, pyelftools, the ELF symbol table and
the sample MANIFEST; and the shared reader's whole-program walk it stands on."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import SAMPLES, Corpus, elffile
from elftools.dwarf.enums import ENUM_DW_AT
from hypothesis import given, settings
from hypothesis import strategies as st

# The attribute encoder and random attribute lists of the shared reader's own tests.
from test_dwarf_info import attribute_lists, encode

from ltosyms.diff import diff_images
from ltosyms.dwarf import forms as F
from ltosyms.dwarf import take_census
from ltosyms.dwarf.extract import FUNCTION_LAYOUT, VARIABLE_LAYOUT
from ltosyms.dwarf.info import DieReader
from ltosyms.elf.debug_sections import dwarf_sections
from ltosyms.elf.image import open_image
from ltosyms.elf.symtab import SymbolTable
from ltosyms.errors import InputError

SAMPLE_IMAGES = [
    "vmlinux-gcc",
    "vmlinux-gcc-lto",
    "vmlinux-clang",
    "vmlinux-clang-thinlto",
    "vmlinux-clang-lto",
]
needs_dwarfdump = pytest.mark.skipif(
    shutil.which("llvm-dwarfdump") is None, reason="llvm-dwarfdump (the oracle) not installed"
)


def inlined_instances_by_dwarfdump(path: Path) -> int:
    output = subprocess.run(
        ["llvm-dwarfdump", "--statistics", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return int(json.loads(output)["#inlined functions"])


@needs_dwarfdump
@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_every_inlined_instance_of_a_sample_is_counted(name: str) -> None:
    with open_image(SAMPLES / name) as image:
        census = take_census(dwarf_sections(image))
    assert sum(r.count for r in census.inlined.values()) == inlined_instances_by_dwarfdump(
        SAMPLES / name
    )
    assert census.source_root == "/usr/src/linux-sample"


@needs_dwarfdump
def test_every_inlined_instance_of_a_kernel_is_counted(corpus: Corpus) -> None:
    path = corpus.kernel_vmlinux("clang-nolto")
    with open_image(path) as image:
        census = take_census(dwarf_sections(image))
    assert sum(r.count for r in census.inlined.values()) == inlined_instances_by_dwarfdump(path)
    assert census.source_root.endswith("/linux-source-6.1")
    assert len(census.functions) > 10_000
    # Every function's name resolved, through abstract origins where needed.
    assert all(f.name and f.unit for f in census.functions)


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_duplicate_statics_resolve_to_their_own_unit(name: str) -> None:
    manifest = json.loads((SAMPLES / "MANIFEST.json").read_text())["images"][name]
    with open_image(SAMPLES / name) as image:
        census = take_census(dwarf_sections(image))
    for member in manifest["duplicate_statics"]["members"]:
        function = census.function_at(int(member["address"], 16))
        assert function is not None
        assert function.name == manifest["duplicate_statics"]["name"]
        assert "/usr/src/linux-sample/" + (function.unit or "") == member["decl_file"]


def test_gcc_cold_part_belongs_to_its_function() -> None:
    manifest = json.loads((SAMPLES / "MANIFEST.json").read_text())["images"]["vmlinux-gcc-lto"]
    with open_image(SAMPLES / "vmlinux-gcc-lto") as image:
        census = take_census(dwarf_sections(image))
    for entry in manifest["clones"]["cold"]:
        function = census.function_at(int(entry["address"], 16))
        assert function is not None and function.name == entry["base"]


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="binutils objcopy not installed")
def test_image_without_dwarf(tmp_path: Path) -> None:
    stripped = tmp_path / "vmlinux-nodebug"
    subprocess.run(
        ["objcopy", "--strip-debug", str(SAMPLES / "vmlinux-gcc"), str(stripped)], check=True
    )
    with open_image(stripped) as image, pytest.raises(InputError, match="no DWARF"):
        take_census(dwarf_sections(image))
    report = diff_images(SAMPLES / "vmlinux-gcc", stripped)
    assert report.base.has_dwarf and not report.new.has_dwarf
    assert any("has no DWARF" in note for note in report.notes)
    assert not report.inline_evidence


def test_truncated_dwarf_is_an_input_error(tmp_path: Path) -> None:
    data = bytearray((SAMPLES / "vmlinux-clang").read_bytes())
    with open_image(SAMPLES / "vmlinux-clang") as image:
        info = image.get_section(".debug_info")
        assert info is not None
        # Unit lengths pointing past the end: a damaged file, not a crash.
        data[info.file_offset : info.file_offset + 4] = b"\xf0\xff\xff\x7f"
    broken = tmp_path / "vmlinux-broken"
    broken.write_bytes(bytes(data))
    with open_image(broken) as image, pytest.raises(InputError):
        take_census(dwarf_sections(image))


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_static_variables_are_named_as_the_symbol_table_names_them(name: str) -> None:
    # gcc names a function's static `count` count.0 in .symtab, clang widget_update.count:
    # either way the DWARF name is one of the symbol's dot-separated parts.
    with open_image(SAMPLES / name) as image:
        census = take_census(dwarf_sections(image))
        symbols = SymbolTable(image)
    assert len(census.variables) > 10
    for variable in census.variables:
        names = [symbol.name for symbol in symbols.symbols_at(variable.link_address)]
        assert any(variable.name in symbol.split(".") for symbol in names), (variable, names)
        assert census.variable_at(variable.link_address) is not None


# Static locals that kernel macros define (WARN_ONCE, printk_once, WARN_RATELIMIT): gcc names
# their symbols name.N.
MACRO_STATIC = re.compile(r"(__already_done|__print_once|__warned|_rs)\.\d+")


def test_static_locals_of_inline_functions_are_found(corpus: Corpus) -> None:
    # gcc describes a static local of an inline function once, in the function's abstract
    # instance (a subprogram without code, behind a DW_AT_sibling the walk must not take).
    with open_image(corpus.kernel_vmlinux("gcc-nolto")) as image:
        census = take_census(dwarf_sections(image))
        symbols = SymbolTable(image)
    statics = [
        (match.group(1), symbol)
        for symbol in symbols
        if symbol.type == "OBJECT" and (match := MACRO_STATIC.fullmatch(symbol.name))
    ]
    assert len(statics) > 100
    for name, symbol in statics:
        variable = census.variable_at(symbol.link_address)
        assert variable is not None and variable.name == name, symbol


# -- the whole-program walk of the shared reader ---------------------------------------------

BLOCK_FORMS = (F.FORM_EXPRLOC, F.FORM_BLOCK, F.FORM_BLOCK1, F.FORM_BLOCK2, F.FORM_BLOCK4)
BLOCK_FORM_NAMES = {
    f"DW_FORM_{name}" for name in ("exprloc", "block", "block1", "block2", "block4")
}


def pyelftools_program_dies(image: Any) -> list[tuple[int, int, int, Any]]:
    """(offset, tag, offset of the enclosing subprogram or inlined subroutine, DIE) of every
    DIE the whole-program walk keeps, as pyelftools reads them."""
    dwarf = elffile(image.path).get_dwarf_info()
    tags = {
        "DW_TAG_subprogram": F.TAG_SUBPROGRAM,
        "DW_TAG_inlined_subroutine": F.TAG_INLINED_SUBROUTINE,
        "DW_TAG_variable": F.TAG_VARIABLE,
    }
    found = []
    for unit in dwarf.iter_CUs():
        for die in unit.iter_DIEs():
            tag = tags.get(die.tag)
            if tag is None:
                continue
            location = die.attributes.get("DW_AT_location")
            if tag == F.TAG_VARIABLE and (
                location is None or location.form not in BLOCK_FORM_NAMES
            ):
                continue
            parent = die.get_parent()
            while parent is not None and parent.tag not in (
                "DW_TAG_subprogram",
                "DW_TAG_inlined_subroutine",
            ):
                parent = parent.get_parent()
            found.append((die.offset, tag, parent.offset if parent is not None else -1, die))
    return found


@pytest.mark.parametrize("name", SAMPLE_IMAGES)
def test_program_walk_keeps_what_pyelftools_finds(name: str) -> None:
    with open_image(SAMPLES / name) as image:
        expected = pyelftools_program_dies(image)
        reader = DieReader(dwarf_sections(image))
        walked = []
        for unit_offset in reader.index.offsets:
            _unit, dies = reader.program_dies(unit_offset)
            walked += [
                (offset, tag, dies.offsets[parent] if parent >= 0 else -1, values)
                for offset, tag, parent, values in zip(
                    dies.offsets, dies.tags, dies.parents, dies.values, strict=True
                )
            ]
    assert [entry[:3] for entry in walked] == [entry[:3] for entry in expected]
    assert any(tag == F.TAG_VARIABLE for _o, tag, _p, _v in walked)
    for (_offset, tag, _parent, values), (*_, die) in zip(walked, expected, strict=True):
        if tag == F.TAG_VARIABLE:
            variable = VARIABLE_LAYOUT.record(values)
            assert variable.location == bytes(die.attributes["DW_AT_location"].value)
            name_attribute = die.attributes.get("DW_AT_name")
            if name_attribute is not None:
                expected_name = name_attribute.value.decode()
                assert reader.text(variable.name_form, variable.name) == expected_name
        elif tag == F.TAG_INLINED_SUBROUTINE:
            origin = die.get_DIE_from_attribute("DW_AT_abstract_origin")
            assert FUNCTION_LAYOUT.record(values).origin == origin.offset


def test_attributes_at_reads_any_die() -> None:
    with open_image(SAMPLES / "vmlinux-gcc-lto") as image:
        expected = pyelftools_program_dies(image)
        reader = DieReader(dwarf_sections(image))
        for offset, tag, _parent, die in expected[:40]:
            unit, read_tag, values = reader.attributes_at(offset)
            assert read_tag == tag
            assert unit.base == die.cu.cu_offset
            assert set(values) == {ENUM_DW_AT[name] for name in die.attributes}


@settings(derandomize=True, max_examples=150, deadline=None)
@given(
    attribute_lists,
    attribute_lists,
    st.sampled_from((*BLOCK_FORMS, F.FORM_SEC_OFFSET)),
    st.binary(min_size=1, max_size=200),
    st.sampled_from((F.FORM_STRING, F.FORM_STRP, F.FORM_STRX)),
    st.sampled_from((F.FORM_REF4, F.FORM_REF_UDATA, F.FORM_REF_ADDR)),
)
def test_variable_extractor_reads_its_attributes_among_any_others(
    before: list[tuple[int, Any]],
    after: list[tuple[int, Any]],
    location_form: int,
    expression: bytes,
    name_form: int,
    reference_form: int,
) -> None:
    name_value: Any = b"count" if name_form == F.FORM_STRING else 7
    location_value: Any = expression if location_form != F.FORM_SEC_OFFSET else 0x40
    wanted = [
        (F.AT_NAME, name_form, name_value),
        (F.AT_LOCATION, location_form, location_value),
        (F.AT_SPECIFICATION, reference_form, 0x2A),
    ]
    filler = 0x3F  # DW_AT_external: not read
    specs = (
        [(filler, form, 0) for form, _ in before]
        + [(attribute, form, 0) for attribute, form, _ in wanted]
        + [(filler, form, 0) for form, _ in after]
    )
    data = b"".join(
        encode(form, value) for form, value in [*before, *[w[1:] for w in wanted], *after]
    )

    class UnitStub:
        base = 0x1000

        def strx(self, index: int) -> str:
            return f"string {index}"

    end, raw = VARIABLE_LAYOUT.extractor(specs, 4, 8, "<", 5)(data + b"\xee", 0, UnitStub())
    values = VARIABLE_LAYOUT.record(raw)
    assert end == len(data)
    if location_form == F.FORM_SEC_OFFSET:  # a location list: no expression to read
        assert values.location is None
    else:
        assert values.location == expression
    if name_form == F.FORM_STRX:
        assert (values.name_form, values.name) == (0, "string 7")
    else:
        assert (values.name_form, values.name) == (name_form, name_value)
    relative = reference_form != F.FORM_REF_ADDR
    assert values.specification == (0x1000 + 0x2A if relative else 0x2A)
    assert values.origin is None
