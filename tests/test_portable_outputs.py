"""The chapters' stored outputs reproduce under other CPU code paths, not only on the machine that
stored them.

nbval (the main test run) executes every chapter with NumPy and PyTorch held to their AVX2 code on
one thread (``nnimaging.notebook.pin_cpu_kernels``). Other machines differ in ways no pin removes:
the convolution and matrix-product libraries choose their blocking, and so their summation order,
from the cache sizes and the core count. This test re-executes every chapter under configurations
that change the summation order on purpose, and compares with the stored outputs by the same rules
(``nnimaging.nbcompare``), so a chapter that only reproduces on its author's machine fails here,
on one machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CONFIGURATIONS = {
    # the oldest code paths of the libraries that sum: SSE4 oneDNN (convolutions) and MKL (matrix
    # products), NumPy without AVX2 (log, exp, ...). PyTorch's own kernels stay on AVX2 in every
    # configuration: its random number generator draws other numbers under another capability
    # (measured: a U-Net's initial weights sum to 709.18207 on AVX2 and 709.18157 on the scalar
    # code), so that pin is part of what makes outputs reproducible, not a difference to test.
    "sse-libraries": {
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    },
    # the pinned code paths on two threads: reductions split between threads sum in another order
    "two-threads": {"NNIMAGING_THREADS": "2"},
    # the libraries unpinned: whatever the processor has (AVX-512 where present)
    "native-libraries": {
        "ONEDNN_MAX_CPU_ISA": "ALL",
        "MKL_ENABLE_INSTRUCTIONS": "AVX512",
        "NPY_DISABLE_CPU_FEATURES": "",
    },
}


def _has_avx512() -> bool:
    from numpy._core._multiarray_umath import __cpu_features__

    return bool(__cpu_features__.get("AVX512F"))


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_chapters_reproduce_their_stored_outputs_under_other_cpu_code_paths(name):
    if name == "native-libraries" and not _has_avx512():
        pytest.skip("this processor has no AVX-512: its native code paths are the pinned ones")
    env = {**os.environ, **CONFIGURATIONS[name]}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "chapters", "-q", "-p", "no:cacheprovider", "-x"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
    )
    assert result.returncode == 0, f"chapters under {name} ({CONFIGURATIONS[name]}):\n" + result.stdout[-8000:]
