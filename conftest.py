"""Loaded by pytest for every test path (tests/ and chapters/), before anything is collected.

nbval's kernels inherit the environment set here: the chapters' stored outputs reproduce on AVX2
and AVX-512 processors alike (see nnimaging.notebook.pin_cpu_kernels).
"""

from nnimaging.notebook import pin_cpu_kernels

pin_cpu_kernels()
