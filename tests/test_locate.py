"""Finding a release's vmlinux and module trees where distros install them (fake root trees)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import PROJECT, SAMPLES

from ltosyms.elf.image import open_image
from ltosyms.errors import InputError
from ltosyms.locate import (
    KernelFiles,
    locate_kernel,
    module_dirs,
    validate_release,
    vmlinux_candidates,
)

RELEASE = "6.1.0-57-cloud-amd64"
BAD_INPUTS = PROJECT / "testdata" / "bad-inputs"
DEBIAN_DEBUG = f"usr/lib/debug/boot/vmlinux-{RELEASE}"
FEDORA_DEBUG = f"usr/lib/debug/lib/modules/{RELEASE}/vmlinux"
SUSE_DEBUG = f"usr/lib/debug/boot/vmlinux-{RELEASE}.debug"
BOOT = f"boot/vmlinux-{RELEASE}"
BUILD_TREE = f"lib/modules/{RELEASE}/build/vmlinux"


def _place(root: Path, relative: str, source: Path) -> Path:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _build_id(path: Path) -> str:
    with open_image(path) as image:
        assert image.build_id
        return image.build_id


def test_candidates_in_distro_order(tmp_path: Path) -> None:
    assert vmlinux_candidates(RELEASE, tmp_path) == tuple(
        tmp_path / p for p in (DEBIAN_DEBUG, FEDORA_DEBUG, SUSE_DEBUG, BOOT, BUILD_TREE)
    )


def test_nothing_installed_lists_every_place_looked_at(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        locate_kernel(RELEASE, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"no usable vmlinux for release {RELEASE}; looked at: ")
    for relative in (DEBIAN_DEBUG, FEDORA_DEBUG, SUSE_DEBUG, BOOT, BUILD_TREE):
        assert f"{tmp_path / relative} (missing)" in message


@pytest.mark.parametrize("relative", [DEBIAN_DEBUG, FEDORA_DEBUG, SUSE_DEBUG, BOOT, BUILD_TREE])
def test_each_distro_path_is_found(tmp_path: Path, relative: str) -> None:
    sample = SAMPLES / "vmlinux-gcc"
    placed = _place(tmp_path, relative, sample)
    found = locate_kernel(RELEASE, tmp_path)
    assert found == KernelFiles(
        release=RELEASE,
        vmlinux=placed,
        build_id=_build_id(sample),
        has_dwarf=True,
        # Fedora's and the build tree's vmlinux sit inside the module trees they name.
        module_dirs=module_dirs(RELEASE, tmp_path),
        skipped=found.skipped,
    )
    assert all(item.reason == "missing" for item in found.skipped)
    assert [item.path for item in found.skipped] == list(
        vmlinux_candidates(RELEASE, tmp_path)[: len(found.skipped)]
    )


def test_debug_package_wins_over_boot(tmp_path: Path) -> None:
    debug = _place(tmp_path, DEBIAN_DEBUG, SAMPLES / "vmlinux-gcc")
    _place(tmp_path, BOOT, SAMPLES / "vmlinux-clang")
    assert locate_kernel(RELEASE, tmp_path).vmlinux == debug


def test_unusable_candidates_are_skipped_with_their_reason(tmp_path: Path) -> None:
    stripped = _place(tmp_path, DEBIAN_DEBUG, BAD_INPUTS / "vmlinux-gcc-stripped")
    module = _place(tmp_path, FEDORA_DEBUG, SAMPLES / "sample_mod-gcc.ko")
    user = _place(tmp_path, SUSE_DEBUG, BAD_INPUTS / "userspace-hello")
    (tmp_path / BOOT).mkdir(parents=True)  # a directory where a file should be
    nodebug = _place(tmp_path, BUILD_TREE, BAD_INPUTS / "vmlinux-gcc-nodebug")
    found = locate_kernel(RELEASE, tmp_path)
    assert found.vmlinux == nodebug
    assert not found.has_dwarf  # usable: symbols without DWARF still give name+offset
    reasons = {item.path: item.reason for item in found.skipped}
    assert reasons[stripped].startswith("has no .symtab")
    assert reasons[module].startswith("is a kernel module")
    assert reasons[user].startswith("not a Linux kernel image")
    assert reasons[tmp_path / BOOT].startswith("is a directory")


def test_build_id_from_the_log_selects_the_matching_image(tmp_path: Path) -> None:
    other = _place(tmp_path, DEBIAN_DEBUG, SAMPLES / "vmlinux-gcc")
    wanted = _place(tmp_path, BOOT, SAMPLES / "vmlinux-clang")
    build_id = _build_id(wanted)
    found = locate_kernel(RELEASE, tmp_path, build_id=build_id.upper())
    assert found.vmlinux == wanted
    assert found.build_id == build_id
    assert {item.path: item.reason for item in found.skipped}[other] == (
        f"build id {_build_id(other)}, the log has {build_id}"
    )


def test_no_image_with_the_logs_build_id_is_an_error(tmp_path: Path) -> None:
    _place(tmp_path, DEBIAN_DEBUG, SAMPLES / "vmlinux-gcc")
    with pytest.raises(InputError, match=f"no usable vmlinux with build id {'ab' * 20}"):
        locate_kernel(RELEASE, tmp_path, build_id="ab" * 20)


def test_module_trees_debug_first_and_only_existing(tmp_path: Path) -> None:
    assert module_dirs(RELEASE, tmp_path) == ()
    installed = tmp_path / "lib" / "modules" / RELEASE
    installed.mkdir(parents=True)
    assert module_dirs(RELEASE, tmp_path) == (installed,)
    debug = tmp_path / "usr" / "lib" / "debug" / "lib" / "modules" / RELEASE
    debug.mkdir(parents=True)
    _place(tmp_path, DEBIAN_DEBUG, SAMPLES / "vmlinux-gcc")
    assert locate_kernel(RELEASE, tmp_path).module_dirs == (debug, installed)


@pytest.mark.parametrize(
    "release",
    ["6.1.0-57-cloud-amd64", "5.14.0-362.8.1.el9_3.x86_64", "6.8.0-rc1+", "6.1.0~bpo12"],
)
def test_real_release_strings_are_accepted(release: str) -> None:
    assert validate_release(release) == release


@pytest.mark.parametrize(
    "release", ["", "../../etc", "6.1/../../x", "6.1 x", "-rc1", ".hidden", "6.1\n", "x" * 65]
)
def test_release_strings_cannot_leave_the_search_directories(release: str) -> None:
    with pytest.raises(InputError, match="is not a kernel release string"):
        vmlinux_candidates(release)
    with pytest.raises(InputError):
        locate_kernel(release)
