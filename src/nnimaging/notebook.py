"""Make a chapter's execution reproducible: one call at the top of every notebook.

``setup()`` seeds every random generator the book uses, asks PyTorch for
deterministic kernels on a fixed number of threads, and configures matplotlib so
that inline figures are SVG with fixed ids and no timestamp. A fresh run of a
chapter then produces byte-identical outputs, which is what ``nbval`` checks in CI.
"""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["setup", "show_source", "SEED"]

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
        single-core machine (Binder, a busy CI runner): measured 20x slower.
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
    if torch is not None:
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("SOURCE_DATE_EPOCH", "0")  # matplotlib: no date in SVG/PDF metadata

    import matplotlib as mpl

    mpl.rcParams.update(_MPL_STYLE)
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - outside IPython
        return
    set_matplotlib_formats(figure_format, metadata={"Date": None}, bbox_inches="tight")


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

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}}).execute()
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)

