"""Print how many corpus frames decode to the oracle's source chain, per kernel.

Usage: python tools/decode_accuracy.py [CORPUS]   (default ../shared/corpus)
Needs the corpus vmlinux files unpacked by its get-vmlinux.sh scripts.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import SMALL_KERNELS, Corpus
from test_decode import _run


def main() -> None:
    root = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    corpus = Corpus(root)
    rows = []
    for variant in SMALL_KERNELS:
        folder = corpus.kernels / variant
        rows.append(
            (variant, *_run(corpus.kernel_vmlinux(variant), folder, ["console.log"], folder))
        )
    rows.append(
        (
            "debian",
            *_run(
                corpus.debian_vmlinux(),
                corpus.debian,
                ["console-sysrq.log", "console-sysrq-nooops.log"],
                corpus.debian / "modules",
            ),
        )
    )
    print(f"{'kernel':<22} {'checked':>8} {'equal':>8} {'percent':>8}")
    for name, checked, differences in rows:
        equal = checked - len(differences)
        print(f"{name:<22} {checked:>8} {equal:>8} {100 * equal / checked:>7.2f}%")
    for name, _checked, differences in rows:
        for difference in differences:
            print(f"  {name}: {difference}")


if __name__ == "__main__":
    main()
