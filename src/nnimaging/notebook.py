"""Make a chapter's execution reproducible: one call at the top of every notebook.

``setup()`` seeds every random generator the book uses, asks PyTorch for
deterministic kernels on a fixed number of threads, and configures matplotlib so
that inline figures are SVG with fixed ids and no timestamp. A fresh run of a
chapter then produces byte-identical outputs, which is what ``nbval`` checks in CI.

Identical outputs on *different* x86-64 processors need one more thing, done by whatever starts
the kernel (the test suite, the book build, ``python -m nnimaging execute``):
:func:`pin_cpu_kernels`. NumPy, PyTorch, MKL and oneDNN each pick vectorised code by the
processor they find, and AVX-512 code rounds differently from AVX2 code (other summation orders,
other ``log`` implementations). A training loop amplifies the last-bit differences until a loss
curve or a printed PSNR changes. Pinned to AVX2, which every x86-64 processor of the last decade
has, a chapter executed on one machine reproduces on another.
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np

__all__ = ["setup", "show_source", "glue", "pin_cpu_kernels", "use_bundled_fonts", "PORTABLE_CPU_ENV", "SEED"]

SEED = 0
"""The seed every chapter starts from."""

_MPL_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "svg.hashsalt": "nnimaging",  # fixed element ids in SVG output
    "svg.fonttype": "path",  # text as paths: same look without the reader's fonts
    "image.cmap": "gray",
    "image.interpolation": "nearest",
}


PORTABLE_CPU_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",  # PyTorch's own vectorised kernels (elementwise, reductions)
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",  # matrix products (MKL)
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # convolutions (oneDNN)
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",  # NumPy's AVX-512 loops (log, exp, ...)
}
"""Environment variables that hold NumPy and PyTorch to their AVX2 code on x86-64 processors.

They must be set before the libraries load, so they go into the environment of a kernel's
process, not into the kernel.
"""


def pin_cpu_kernels(environ=None) -> dict:
    """Set :data:`PORTABLE_CPU_ENV` in ``environ`` (default ``os.environ``) where it applies.

    Only on x86-64 processors with AVX2; elsewhere nothing is set (other processors never made
    the stored outputs agree anyway). Values already set are kept, so a user can override each.
    Kernels started afterwards by this process inherit the settings.

    Returns
    -------
    dict
        The variables this call set.
    """
    environ = os.environ if environ is None else environ
    if platform.machine().lower() not in ("x86_64", "amd64") or not _has_avx2():
        return {}
    added = {k: v for k, v in PORTABLE_CPU_ENV.items() if k not in environ}
    environ.update(added)
    return added


def _has_avx2() -> bool:
    from numpy._core._multiarray_umath import __cpu_features__

    return bool(__cpu_features__.get("AVX2"))


def setup(seed: int = SEED, threads: int = 1, figure_format: str = "svg") -> None:
    """Seed everything and configure torch and matplotlib for reproducible output.

    Parameters
    ----------
    seed : int
        Seed for Python's ``random``, NumPy's legacy global generator and torch.
    threads : int
        Number of CPU threads torch uses. A fixed number keeps floating-point
        reductions in the same order on every machine; one thread, because the
        chapters' networks are small and extra threads stall badly on a shared or
        single-core machine (Binder, a busy CI runner): measured 20x slower. The environment
        variable ``NNIMAGING_THREADS`` overrides it (the portability test runs the chapters on two
        threads to check that their stored outputs do not depend on the summation order).
    figure_format : {"svg", "png"}
        Format of inline matplotlib figures. SVG is compared by nbval; it is made
        deterministic (fixed ids, no creation date).
    """
    if figure_format not in ("svg", "png"):
        raise ValueError(f"figure_format must be 'svg' or 'png', got {figure_format!r}")
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but keep setup usable
        torch = None
    threads = int(os.environ.get("NNIMAGING_THREADS", threads))  # the portability test varies it
    if threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads} (NNIMAGING_THREADS?)")
    if torch is not None:
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")  # matplotlib: no date in SVG/PDF metadata

    import matplotlib as mpl

    mpl.rcParams.update(_MPL_STYLE)
    use_bundled_fonts()
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - outside IPython
        return
    set_matplotlib_formats(figure_format, metadata={"Date": None}, bbox_inches="tight")


def use_bundled_fonts() -> list[str]:
    """Draw text with the fonts matplotlib ships, never a system copy of the same family.

    With ``svg.fonttype: path`` every glyph is written into the figure, named after its index in
    the font file. A system's DejaVu Sans (Debian's ``fonts-dejavu-core``, version 2.37) numbers
    the minus sign 0xc9d, matplotlib's own copy (2.35) 0xc9c; which of the two matplotlib picks
    depends on the order of its font cache, built afresh on every machine. Dropping system fonts
    of the bundled families makes the stored figures the same everywhere.

    Returns the names of the bundled families (DejaVu Sans, DejaVu Serif, STIX, cm...).
    """
    import glob

    import matplotlib as mpl
    from matplotlib import font_manager

    manager = font_manager.fontManager
    bundled_dir = os.path.realpath(os.path.join(mpl.get_data_path(), "fonts", "ttf"))

    def bundled(entry) -> bool:
        return os.path.realpath(entry.fname).startswith(bundled_dir + os.sep)

    known = {os.path.realpath(entry.fname) for entry in manager.ttflist}
    for path in sorted(glob.glob(os.path.join(bundled_dir, "*.ttf"))):
        if os.path.realpath(path) not in known:  # a font cache written by another installation
            manager.addfont(path)
    families = {entry.name for entry in manager.ttflist if bundled(entry)}
    kept = [entry for entry in manager.ttflist if bundled(entry) or entry.name not in families]
    if len(kept) != len(manager.ttflist):
        manager.ttflist = kept
        manager._findfont_cached.cache_clear()  # matplotlib memoises findfont per font manager
        font_manager._get_font.cache_clear()
    return sorted(families)


GLUE_PREFIX = "application/papermill.record/"
"""How myst-nb recognises a glued value among a cell's outputs."""


def glue(name: str, value, digits: int = 4):
    """State a computed number in the prose: ``{glue:text}`name:.2f``` in a markdown cell shows it.

    The same output as ``myst_nb.glue(name, value, display=False)``, written without myst-nb so
    that a chapter also runs where only this package is installed (Colab). Floats are rounded to
    ``digits`` decimals first: the prose states fewer, and the stored output then reproduces on
    other processors (``nnimaging.nbcompare`` compares it like printed text). Returns nothing, so
    a glue call may end a cell without adding the value as the cell's result.
    """
    import numbers

    from IPython.display import display

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"glue name must be a Python identifier (it is written in the prose), got {name!r}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Number, str)):
        raise TypeError(f"glue expects a number or a string, got {type(value).__name__}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = round(float(value), digits)
    display({GLUE_PREFIX + "text/plain": repr(value)}, raw=True,
            metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})


def show_source(obj):
    """Display the source code of a package function or class as a highlighted code block.

    Chapters use it to show the helper that computes a formula, so that the code the reader sees
    is the code that ran (one copy, unit-tested in ``tests/``).
    """
    import inspect
    import textwrap

    from IPython.display import Markdown

    try:
        source = inspect.getsource(obj)
    except (TypeError, OSError) as err:
        raise TypeError(f"cannot show the source of {obj!r}: expected a function or class "
                        "defined in a Python file") from err
    return Markdown(f"```python\n{textwrap.dedent(source).rstrip()}\n```")


def execute(path, timeout: int = 600) -> None:
    """Run a chapter top to bottom and store it with its outputs (what nbval later checks).

    Widget state is not stored: it holds random model ids and duplicates what the cell outputs
    already carry. Run as ``python -m nnimaging execute chapters/02_*.ipynb``.
    """
    import nbformat
    from nbclient import NotebookClient

    pin_cpu_kernels()  # the kernel started below inherits the setting
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    nb.metadata.pop("widgets", None)
    from ._checks import atomic_path

    with atomic_path(path) as tmp:  # an interrupted or failed write leaves the chapter as it was
        nbformat.write(nb, str(tmp))

