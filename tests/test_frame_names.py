"""Frames named as the kernel names them: the strong alias kallsyms prints, compiler copies
said once in plain words, a ThinLTO ``.llvm.N`` name given once per frame."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from click.testing import CliRunner
from conftest import Corpus

from ltosyms.cli import cli
from ltosyms.names.copies import copy_description


def _run(arguments: list[str]) -> str:
    result = CliRunner().invoke(cli, arguments, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("tg_sleep_deep.constprop.0", "a copy of tg_sleep_deep specialized for constant arguments"),
        (
            "finish_task_switch.isra.0",
            "a copy of finish_task_switch with its arguments rewritten (scalar replacement)",
        ),
        (
            "sched_show_task.cold",
            "the rarely run part of sched_show_task, split off by the compiler",
        ),
        (
            "kmem_cache_free_bulk.part.0",
            "the outlined part of kmem_cache_free_bulk (partial inlining)",
        ),
        # The code-changing suffix says what the code is; the promotion only renames it.
        ("x.isra.0.cold", "the rarely run part of x, split off by the compiler"),
        (
            "try_to_wake_up.llvm.14717294184349261171",
            "try_to_wake_up under the unique name clang ThinLTO gives a static function",
        ),
        (
            "create_worker.lto_priv.0",
            "create_worker under the unique name gcc LTO gives a static function",
        ),
        ("schedule", None),
    ],
)
def test_copies_in_plain_words(name: str, words: str | None) -> None:
    assert copy_description(name) == words


def test_the_strong_alias_names_the_function(corpus: Corpus) -> None:
    # /proc/kallsyms of this kernel: `T __alloc_bootmem_huge_page` and `W
    # alloc_bootmem_huge_page` at one address; the kernel prints the strong one.
    output = _run(
        ["symbolize", str(corpus.debian_vmlinux()), "__alloc_bootmem_huge_page+0x14/0x100"]
    )
    assert output.splitlines()[1:] == [
        "    include/linux/hugetlb.h:808:34  huge_page_size (inlined)",
        "    mm/hugetlb.c:3211:53  __alloc_bootmem_huge_page",
    ]


def test_thinlto_names_once_per_frame(corpus: Corpus) -> None:
    folder = corpus.kernels / "clang-thinlto"
    output = _run(
        [
            "decode",
            str(corpus.kernel_vmlinux("clang-thinlto")),
            str(folder / "console.log"),
            "--modules",
            str(folder),
            "--no-cache",
        ]
    )
    lines = output.splitlines()
    start = lines.index("[   11.541386]  ? try_to_wake_up+0x24e/0x2a0")
    assert lines[start + 1 : start + 4] == [
        "    kernel/sched/core.c:4241:2  try_to_wake_up",
        "    call at try_to_wake_up+0x249: call _raw_spin_unlock_irqrestore",
        "    note: ELF name try_to_wake_up.llvm.14717294184349261171: try_to_wake_up under the "
        "unique name clang ThinLTO gives a static function",
    ]
    # Per frame (its line and the annotations under it), no .llvm.N name twice.
    printed = set((folder / "console.log").read_text(errors="replace").splitlines())
    frames: list[list[str]] = []
    for line in lines:
        if line in printed:
            frames.append([])
        elif frames:
            frames[-1].append(line)
    repeated = []
    for below in frames:
        counts = Counter(re.findall(r"[\w.]+\.llvm\.\d+", " ".join(below)))
        repeated += [name for name, count in counts.items() if count > 1]
    assert repeated == []
    notes = sum(1 for below in frames for line in below if "note: ELF name" in line)
    # check_preempt_wakeup and try_to_wake_up: the two frames of ThinLTO-renamed functions.
    assert notes == 2
