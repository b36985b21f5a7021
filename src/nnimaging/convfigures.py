"""The step-through demos and grid figures of chapter 4 (convolutional building blocks).

* step functions, the state of an operation after a number of output cells:
  :func:`conv_step`, :func:`pool_step`, :func:`conv_transpose_step`;
* the demos (``*_demo``, frames mode: every position of the controls is computed in Python,
  no JavaScript twin), registered under ``conv.*``, on the inputs :data:`CONV_DEMO_INPUT`,
  :data:`CONV_DEMO_KERNEL`, :data:`POOL_DEMO_INPUT` and :data:`TRANSPOSED_DEMO_INPUT`;
* static figures of small arrays drawn as grids of numbers (``plot_*``), a measured receptive
  field (:func:`plot_receptive_field`, of :func:`nnimaging.conv.empirical_receptive_field`) and
  a row of images (:func:`plot_images`, which later chapters use too).

The arithmetic they show is in :mod:`nnimaging.conv`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ._checks import positive_int
from .conv import POOL_KINDS, _array, blur_kernel, conv2d, overlap_counts, pool2d
from .demo import Choice, Demo, Grid, Image, Line, Panel, Slider, Text, register

__all__ = [
    "conv_step", "pool_step", "conv_transpose_step",
    "plot_matrices", "plot_parameter_counts", "plot_conv_matrix", "plot_translation_stability",
    "plot_layer_parameters", "plot_receptive_field", "plot_images",
    "convolution_demo", "pooling_demo", "transposed_convolution_demo", "overlap_demo",
    "CONV_DEMO_INPUT", "CONV_DEMO_KERNEL", "POOL_DEMO_INPUT", "TRANSPOSED_DEMO_INPUT",
]


# ----------------------------------------------------------------------------- step-throughs
def _window_mask(shape, top: int, left: int, height: int, width: int, step: int = 1):
    mask = np.zeros(shape, dtype=bool)
    mask[top: top + (height - 1) * step + 1: step, left: left + (width - 1) * step + 1: step] = True
    return mask


def conv_step(x, kernel, stride: int, padding: int, step: int) -> dict:
    """State of a single-channel convolution after ``step`` output cells (raster order).

    Parameters
    ----------
    x : (H, W) array
    kernel : (k, k) array
    stride, padding : int
    step : int >= 1
        Number of output cells computed; clipped to the number of output cells.

    Returns
    -------
    dict with ``input`` (the padded input, with NaN in the padding so that a figure can leave
    those zeros blank), ``window`` (bool mask of the kernel's current position in it),
    ``kernel``, ``products`` (window values times kernel), ``output`` (the output with NaN
    where not computed yet), ``current`` (bool mask of the current output cell), ``value``
    (its value), ``row``, ``col``, ``cell`` (1-based index of the current cell), ``cells``,
    ``oh``, ``ow`` (output size), ``padding``, ``stride``.
    """
    x, k = _array("x", x, (2,)), _array("kernel", kernel, (2,))
    step = positive_int("step", step, 1)
    full = conv2d(x, k, stride=stride, padding=padding)
    oh, ow = full.shape
    n = min(step, oh * ow)
    row, col = divmod(n - 1, ow)
    xp = np.pad(x, padding)
    output = np.full(full.shape, np.nan)
    output.flat[:n] = full.flat[:n]
    window = _window_mask(xp.shape, row * stride, col * stride, *k.shape)
    patch = xp[row * stride: row * stride + k.shape[0], col * stride: col * stride + k.shape[1]]
    current = np.zeros(full.shape, dtype=bool)
    current[row, col] = True
    shown = np.full(xp.shape, np.nan)
    shown[padding: padding + x.shape[0], padding: padding + x.shape[1]] = x
    return {"input": shown, "window": window, "kernel": k, "products": patch * k + 0.0,
            "output": output, "current": current, "value": float(full[row, col]),
            "row": row, "col": col, "cell": n, "cells": oh * ow, "oh": oh, "ow": ow,
            "padding": padding, "stride": stride}


def pool_step(x, kind: str, window: int, stride: int, step: int) -> dict:
    """State of a pooling layer after ``step`` output cells (raster order).

    Returns a dict with ``input``, ``window`` (bool mask of the current window), ``weights``
    (the window's weights: binomial for ``"blur"``, uniform for ``"mean"``; for ``"max"``,
    1 at the window's maximum and 0 elsewhere), ``output`` (NaN where not computed yet),
    ``current``, ``value``, ``cell``, ``cells``, ``oh``, ``ow``.
    """
    x = _array("x", x, (2,))
    window, stride, step = positive_int("window", window, 1), positive_int("stride", stride, 1), positive_int(
        "step", step, 1)
    full = pool2d(x, window, stride, kind)
    oh, ow = full.shape
    n = min(step, oh * ow)
    row, col = divmod(n - 1, ow)
    output = np.full(full.shape, np.nan)
    output.flat[:n] = full.flat[:n]
    patch = x[row * stride: row * stride + window, col * stride: col * stride + window]
    if kind == "max":
        weights = np.zeros_like(patch)
        weights.flat[int(np.argmax(patch))] = 1.0
    elif kind == "mean":
        weights = np.full(patch.shape, 1.0 / patch.size)
    else:
        weights = blur_kernel(window)
    current = np.zeros(full.shape, dtype=bool)
    current[row, col] = True
    return {"input": x, "window": _window_mask(x.shape, row * stride, col * stride, window,
                                               window),
            "weights": weights, "output": output, "current": current,
            "value": float(full[row, col]), "cell": n, "cells": oh * ow, "oh": oh, "ow": ow}


def conv_transpose_step(x, kernel, stride: int, step: int) -> dict:
    """State of a transposed convolution after the first ``step`` input values are spread.

    Each input value ``x[i, j]`` (raster order) adds ``x[i, j] * kernel`` into the output at
    rows ``i s ...``, columns ``j s ...``. Output cells no input has reached yet are NaN.

    Returns a dict with ``input``, ``source`` (bool mask of the current input value),
    ``kernel``, ``stamp`` (``x[i, j] * kernel``; NaN before the first step), ``output``,
    ``target`` (bool mask of where the stamp lands), ``step``, ``cells`` (input values),
    ``value`` (the current input value), ``oh``, ``ow``.
    """
    x, k = _array("x", x, (2,)), _array("kernel", kernel, (2,))
    step = positive_int("step", step, 0)
    s = positive_int("stride", stride, 1)
    h, w = x.shape
    kh, kw = k.shape
    n = min(step, h * w)
    out = np.zeros(((h - 1) * s + kh, (w - 1) * s + kw))
    touched = np.zeros(out.shape, dtype=bool)
    source = np.zeros(x.shape, dtype=bool)
    target = np.zeros(out.shape, dtype=bool)
    stamp = np.full(k.shape, np.nan)
    value = float("nan")
    for idx in range(n):
        i, j = divmod(idx, w)
        out[i * s: i * s + kh, j * s: j * s + kw] += x[i, j] * k
        touched[i * s: i * s + kh, j * s: j * s + kw] = True
        if idx == n - 1:
            source[i, j] = True
            target[i * s: i * s + kh, j * s: j * s + kw] = True
            stamp, value = x[i, j] * k, float(x[i, j])
    out[~touched] = np.nan
    return {"input": x, "source": source, "kernel": k, "stamp": stamp, "output": out,
            "target": target, "step": n, "cells": h * w, "value": value,
            "oh": out.shape[0], "ow": out.shape[1]}


# ----------------------------------------------------------------------------- demos
CONV_DEMO_INPUT = [[1, 1, 2, 5, 6, 6],
                   [1, 2, 2, 6, 6, 5],
                   [0, 1, 3, 5, 7, 6],
                   [1, 1, 2, 6, 6, 6],
                   [2, 1, 1, 5, 6, 7],
                   [1, 0, 2, 6, 5, 6]]
"""A 6x6 image with a vertical edge between columns 2 and 3."""

CONV_DEMO_KERNEL = [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]
"""A 3x3 kernel that responds to dark-to-bright vertical edges."""

POOL_DEMO_INPUT = [[3, 1, 4, 1, 5],
                   [9, 2, 6, 5, 3],
                   [5, 8, 9, 7, 9],
                   [3, 2, 3, 8, 4],
                   [6, 2, 6, 4, 3]]
"""A 5x5 input for the pooling demo (the first 25 digits of pi)."""


def _cells_limit(shape_fn, settings) -> int:
    return max(int(np.prod(shape_fn(*s))) for s in settings)


@register("conv.convolution")
def convolution_demo(x=None, kernel=None) -> Demo:
    """Step through a convolution: the kernel slides, each position fills one output cell.

    Controls: zero padding (0, 1), stride (1, 2) and the output cell. ``x`` (H, W) and
    ``kernel`` (k, k) are nested lists of numbers (default :data:`CONV_DEMO_INPUT` and
    :data:`CONV_DEMO_KERNEL`).
    """
    x = CONV_DEMO_INPUT if x is None else x
    kernel = CONV_DEMO_KERNEL if kernel is None else kernel
    xa, ka = _array("x", x, (2,)), _array("kernel", kernel, (2,))
    settings = [(p, s) for p in (0, 1) for s in (1, 2)]
    cells = _cells_limit(lambda p, s: conv2d(xa, ka, stride=s, padding=p).shape, settings)
    n, k = xa.shape[0], ka.shape[0]

    def compute(padding, stride, cell):
        return conv_step(xa, ka, stride, padding, cell)

    return Demo(
        "Convolution: slide the kernel, one inner product per output cell",
        [Slider("padding", 0, 1, 1, 0, label="padding p"),
         Slider("stride", 1, 2, 1, 1, label="stride s"),
         Slider("cell", 1, cells, 1, 1, label="output cell")],
        compute,
        [Panel([Grid("input", fmt="d", highlight="window")],
               title="input, padding {padding:d} (blank = 0)", axes=False),
         Panel([Grid("kernel", fmt="d")], title="kernel", axes=False),
         Panel([Grid("products", fmt="d")], title="window × kernel: sum {value:d}", axes=False),
         Panel([Grid("output", fmt="d", highlight="current")],
               title="output {oh:d}×{ow:d}, cell {cell:d}/{cells:d}", axes=False)],
        alt=(f"Step-through of a 2-D convolution of a {n} by {n} input containing a vertical "
             f"edge with a {k} by {k} edge kernel. The input grid highlights the current "
             "kernel window (zero padding, when p = 1, is drawn as blank cells), a second grid "
             "shows the kernel, a "
             "third the element-wise products of window and kernel whose sum is the current "
             "output value, and the output grid fills one cell per step, highlighting the cell "
             "just computed; stride 2 skips every other window."),
        ncols=2, height=220)



@register("conv.pooling")
def pooling_demo(x=None) -> Demo:
    """Step through max, mean and blur pooling with a choice of window and stride.

    ``x`` is an (H, W) nested list of numbers (default :data:`POOL_DEMO_INPUT`).
    """
    xa = _array("x", POOL_DEMO_INPUT if x is None else x, (2,))
    settings = [(w, s) for w in (2, 3) for s in (1, 2)]
    cells = _cells_limit(lambda w, s: pool2d(xa, w, s).shape, settings)

    def compute(kind, window, stride, cell):
        result = pool_step(xa, kind, window, stride, cell)
        result.update(kind=kind, size=window, stride=stride)
        return result

    n = xa.shape[0]
    return Demo(
        "Pooling: one value per window",
        [Choice("kind", POOL_KINDS, "max", label="pooling"),
         Slider("window", 2, 3, 1, 2, label="window"),
         Slider("stride", 1, 2, 1, 2, label="stride"),
         Slider("cell", 1, cells, 1, 1, label="output cell")],
        compute,
        [Panel([Grid("input", fmt="d", highlight="window")], title=f"input {n}×{n}",
               axes=False),
         Panel([Grid("weights", fmt=".2f")], title="{kind}: weights in the window", axes=False),
         Panel([Grid("output", fmt=".2f", highlight="current")],
               title="output {oh:d}×{ow:d}, cell {cell:d}: {value:.2f}", axes=False)],
        alt=(f"Step-through of pooling on a {n} by {n} grid of digits. The input grid "
             "highlights the current window; a small grid shows how the window's values are "
             "weighted (a single 1 at the maximum for max pooling, equal weights for mean "
             "pooling, binomial weights for blur pooling); the output grid fills one cell per "
             "step and highlights the cell just computed. Window size and stride change the "
             "output size."),
        ncols=3, height=250)


TRANSPOSED_DEMO_INPUT = [[1, 2], [3, 4]]
"""The 2x2 input of the transposed-convolution demo."""


@register("conv.transposed")
def transposed_convolution_demo(x=None) -> Demo:
    """Step through a transposed convolution with a kernel of ones (2x2 or 3x3), stride 1 or 2.

    ``x`` is an (H, W) nested list of numbers (default :data:`TRANSPOSED_DEMO_INPUT`).
    """
    xa = _array("x", TRANSPOSED_DEMO_INPUT if x is None else x, (2,))

    def compute(kernel, stride, step):
        result = conv_transpose_step(xa, np.ones((kernel, kernel)), stride, step)
        result.update(k=kernel, stride=stride)
        return result

    h, w = xa.shape
    return Demo(
        "Transposed convolution: each input value stamps a scaled kernel",
        [Slider("kernel", 2, 3, 1, 2, label="kernel size"),
         Slider("stride", 1, 2, 1, 1, label="stride s"),
         Slider("step", 0, h * w, 1, 0, label="input values used")],
        compute,
        [Panel([Grid("input", fmt="d", highlight="source")], title=f"input {h}×{w}",
               axes=False),
         Panel([Grid("stamp", fmt="d")], title="{value:d} × kernel of ones", axes=False),
         Panel([Grid("output", fmt="d", highlight="target")],
               title="output {oh:d}×{ow:d} after {step:d} of {cells:d}", axes=False)],
        alt=(f"Step-through of a transposed convolution of a {h} by {w} input with a kernel of "
             "ones. At each step one input value (highlighted) multiplies the kernel, and the "
             "scaled kernel is added into the output at a position that moves by the stride; "
             "overlapping placements add up, cells not reached yet are blank."),
        ncols=3, height=230)


def _overlap_result(kernel: int, stride: int, n: int = 6) -> dict:
    counts = overlap_counts(n, kernel, stride)
    grid = np.outer(counts, counts)
    interior = counts[kernel - 1: len(counts) - kernel + 1] if len(counts) > 2 * (
        kernel - 1) else counts
    if kernel < stride:
        verdict = "gaps: kernel < stride leaves outputs empty"
    elif kernel % stride == 0:
        verdict = "even overlap (kernel divisible by stride)"
    else:
        verdict = "uneven overlap: checkerboard"
    return {"image": grid / grid.max(), "x": np.arange(len(counts)), "counts": counts,
            "k": kernel, "s": stride, "verdict": verdict,
            "lo": float(interior.min()), "hi": float(interior.max())}


@register("conv.overlap")
def overlap_demo() -> Demo:
    """How many kernel placements of a transposed convolution reach each output pixel."""
    return Demo(
        "Overlap of a transposed convolution (input of ones, kernel of ones)",
        [Slider("kernel", 1, 5, 1, 3, label="kernel size k"),
         Slider("stride", 1, 4, 1, 2, label="stride s")],
        _overlap_result,
        [Panel([Image("image", 0.0, 1.0)], title="overlap count / maximum", axes=False),
         Panel([Line("x", "counts"), Text("k = {k:d}, s = {s:d}: {verdict}", 0.02, 0.93,
                                          size=10)],
               title="count along one row", xlabel="output column", ylabel="placements",
               xlim=(-0.5, 25.5), ylim=(0, 5.5))],
        alt=("Two panels for a transposed convolution of a 6 by 6 input of ones with a kernel "
             "of ones: an image of how many kernel placements cover each output pixel, and the "
             "count along one row. When the kernel size is a multiple of the stride the "
             "interior is uniform; otherwise the counts alternate and the image shows a "
             "checkerboard; a kernel smaller than the stride leaves gaps."),
        ncols=2, height=300)


# ----------------------------------------------------------------------------- figures
_HIGHLIGHT = "#ffd54f"


def _grid_axes(ax, values, fmt: str, highlight=None, shade: bool = False, fontsize=None,
               vmin=None, vmax=None, hide_zeros: bool = False):
    """Draw a matrix as cells with their numbers (blank for NaN), like the demos' Grid.

    The cell colours are one embedded image and the cell borders two sets of lines, which
    keeps the SVG small however many cells there are.
    """
    from matplotlib import cm
    from matplotlib.colors import Normalize, to_rgba

    from .demo import format_value

    values = np.atleast_2d(np.asarray(values, dtype=float))
    rows, cols = values.shape
    mask = np.zeros(values.shape, bool) if highlight is None else np.asarray(highlight, bool)
    finite = values[np.isfinite(values)]
    norm = Normalize(vmin=finite.min() if vmin is None and finite.size else vmin,
                     vmax=finite.max() if vmax is None and finite.size else vmax)
    faces = np.ones((rows, cols, 4))
    if shade:
        level = np.clip(np.nan_to_num(norm(np.where(np.isfinite(values), values, np.nan)),
                                      nan=0.0), 0, 1)
        faces = np.where(np.isfinite(values)[..., None], cm.Blues(0.05 + 0.6 * level), faces)
    faces[mask] = to_rgba(_HIGHLIGHT)
    ax.imshow(faces, extent=(0, cols, rows, 0), interpolation="nearest", aspect="equal")
    ax.hlines(np.arange(rows + 1), 0, cols, color="#555555", lw=0.8)
    ax.vlines(np.arange(cols + 1), 0, rows, color="#555555", lw=0.8)
    size = fontsize or max(5, min(10, 60 / max(rows, cols)))
    for r in range(rows):
        for c in range(cols):
            v = values[r, c]
            if np.isfinite(v) and not (hide_zeros and v == 0):
                ax.text(c + 0.5, r + 0.5, format_value(v, fmt), ha="center", va="center",
                        fontsize=size)
    ax.set_xlim(-0.05, cols + 0.05)
    ax.set_ylim(rows + 0.05, -0.05)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.grid(False)


def plot_matrices(matrices: Sequence, titles: Sequence[str] | None = None, fmt: str = "d",
                  highlights: Sequence | None = None, shade: bool = False,
                  width: float = 2.2, suptitle: str | None = None):
    """Draw small matrices side by side as grids of numbers (NaN cells are left blank).

    Parameters
    ----------
    matrices : sequence of 2-D arrays (or 1-D, drawn as one row)
    titles : sequence of str, optional
    fmt : str
        Number format: ``"d"``, ``".Nf"`` (as in the demos' Grid).
    highlights : sequence of bool arrays or None, optional
        Cells to fill in yellow, per matrix.
    shade : bool
        Tint cells by value (light to dark blue).
    width : float
        Inches per matrix (scaled by its number of columns relative to the widest).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    mats = [np.atleast_2d(np.asarray(m, dtype=float)) for m in matrices]
    if not mats:
        raise ValueError("need at least one matrix")
    widest = max(m.shape[1] for m in mats)
    tallest = max(m.shape[0] for m in mats)
    ratios = [m.shape[1] for m in mats]
    fig, axes = plt.subplots(1, len(mats), figsize=(width * sum(ratios) / widest + 0.3 * len(mats),
                                                    width * tallest / widest + 0.5),
                             gridspec_kw={"width_ratios": ratios}, squeeze=False)
    for i, (ax, m) in enumerate(zip(axes[0], mats)):
        _grid_axes(ax, m, fmt, None if highlights is None else highlights[i], shade,
                   fontsize=max(6, min(10, 9 * width * 6 / (widest * 2.2))))
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_parameter_counts(sides, dense, conv, channels: int = 3, kernel: int = 3):
    """Parameters of one fully connected vs one convolutional layer as the image grows.

    Parameters
    ----------
    sides : (n,) ints
        Image side length ``N`` (``N x N x channels`` inputs and outputs).
    dense, conv : (n,) ints
        Parameter counts of the two layers for each side.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    ax.loglog(sides, dense, "o-", label=f"fully connected, N·N·{channels} → N·N·{channels}")
    ax.loglog(sides, conv, "s-", label=f"convolution {kernel}×{kernel}, {channels} → {channels} "
                                       "channels")
    ax.set_xlabel("image side N (pixels)")
    ax.set_ylabel("parameters")
    ax.set_xticks(list(sides))
    ax.set_xticklabels([str(s) for s in sides])
    ax.minorticks_off()
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_conv_matrix(matrix, input_shape, output_shape):
    """Show the matrix of a convolution: one row per output pixel, one column per input pixel.

    Non-zero entries are annotated; zeros are blank. Every row holds the same kernel values,
    shifted along the row (weight sharing), and most entries are zero (local connections).
    """
    import matplotlib.pyplot as plt

    m = np.asarray(matrix, dtype=float)
    rows, cols = m.shape
    shown = np.where(m == 0, np.nan, m)
    fig, ax = plt.subplots(figsize=(min(9.5, 0.3 * cols + 1), 0.3 * rows + 1.2))
    _grid_axes(ax, shown, "d", shade=True, fontsize=7)
    h, w = input_shape
    for c in range(w, cols, w):  # separate the input rows
        ax.axvline(c, color="#d62728", lw=1.2)
    ax.set_xlabel(f"input pixel (row-major, {h}×{w}; red lines separate image rows)",
                  fontsize=9)
    ax.set_ylabel(f"output pixel ({output_shape[0]}×{output_shape[1]})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_translation_stability(shifts, maps: dict, titles: dict | None = None, fmt=""):
    """Pooled edge responses for an edge moved by ``shifts`` pixels: one grid per method.

    Cells are tinted by value (0 to 1); zeros are left blank.

    Parameters
    ----------
    shifts : sequence of int
        Row labels.
    maps : dict of name -> (len(shifts), n) array
        Row ``i`` is the 1-D output profile (across the edge) for ``shifts[i]``.
    """
    import matplotlib.pyplot as plt

    names = list(maps)
    widths = [np.asarray(maps[k]).shape[1] for k in names]
    fig, axes = plt.subplots(1, len(names), figsize=(0.27 * sum(widths) + 0.3 * len(names),
                                                     0.27 * len(shifts) + 0.9),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, name in zip(axes[0], names):
        _grid_axes(ax, maps[name], fmt, shade=True, fontsize=7, vmin=0.0, vmax=1.0,
                   hide_zeros=True)
        ax.set_title((titles or {}).get(name, name), fontsize=9)
        ax.set_yticks(np.arange(len(shifts)) + 0.5)
        ax.set_yticklabels([str(s) for s in shifts], fontsize=7)
    axes[0][0].set_ylabel("edge shift (pixels)", fontsize=9)
    fig.tight_layout()
    return fig

def plot_layer_parameters(names: Sequence[str], counts: Sequence[int]):
    """Horizontal bars: parameters per layer (log scale), e.g. for VGG-16."""
    import matplotlib.pyplot as plt

    counts = np.asarray(counts, dtype=float)
    fig, ax = plt.subplots(figsize=(6.0, 0.22 * len(names) + 0.9))
    y = np.arange(len(names))
    colors = ["#1f77b4" if n.startswith("conv") else "#d62728" for n in names]
    ax.barh(y, counts, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("parameters (log scale); blue: convolutions, red: fully connected")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- images and receptive fields
def plot_receptive_field(grad, rf_measured, rf_predicted: int, title: str | None = None):
    """Show where one output pixel's gradient is non-zero, with the bounding box drawn."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    g = np.asarray(grad, dtype=float)
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    shown = np.where(g > 0, np.log10(np.where(g > 0, g, 1.0)), np.nan)
    ax.imshow(np.zeros_like(g), cmap="gray_r", vmin=0, vmax=1)
    im = ax.imshow(shown, cmap="viridis")
    rows, cols = np.nonzero(g > 0)
    if rows.size:
        ax.add_patch(Rectangle((cols.min() - 0.5, rows.min() - 0.5), rf_measured[1],
                               rf_measured[0], fill=False, edgecolor="#d62728", lw=1.5,
                               ls="--"))
    ax.set_title(title or f"measured {rf_measured[0]}×{rf_measured[1]}, "
                 f"predicted {rf_predicted}×{rf_predicted}", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#888888")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="log10 |gradient|")
    fig.tight_layout()
    return fig


def plot_images(images: Sequence, titles: Sequence[str] | None = None, vmin: float = 0.0,
                vmax: float = 1.0, size: float = 2.4, ncols: int | None = None):
    """Grayscale images in a grid of panels, without interpolation (pixels stay visible)."""
    import matplotlib.pyplot as plt

    images = [np.asarray(im, dtype=float) for im in images]
    if not images:
        raise ValueError("need at least one image")
    ncols = ncols or len(images)
    nrows = math.ceil(len(images) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < len(images):
            ax.imshow(images[i], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    fig.tight_layout()
    return fig
