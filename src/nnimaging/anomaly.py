"""Anomaly detection by reconstruction error (chapter 6).

An autoencoder trained on digits reconstructs digits well and other images badly, so its
reconstruction error is an anomaly score. :func:`roc_curve` and :func:`roc_auc` (the
Mann-Whitney statistic, no scikit-learn) evaluate such a score without fixing a threshold;
:func:`image_patches` (crops of natural images, shrunk) and :func:`draw_letters` make images the
digit model never saw; :func:`plot_error_histograms` and :func:`plot_roc` draw the results.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.font_manager import FontProperties
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from ._checks import float_image as _image, positive_int as _int, positive_number as _positive
from .autoencoders import MNIST_SIZE

__all__ = ["roc_curve", "roc_auc", "image_patches", "draw_letters", "plot_error_histograms", "plot_roc"]


def _scores(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one score, got none")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite scores")
    return arr


def roc_curve(normal, anomalous):
    """Receiver operating characteristic of the rule "anomalous if score >= threshold".

    Parameters
    ----------
    normal : (n,) array of float
        Scores of normal examples (negatives), e.g. reconstruction errors of held-out digits.
    anomalous : (m,) array of float
        Scores of anomalous examples (positives).

    Returns
    -------
    fpr, tpr : (T + 1,) float64 arrays
        False positive rate (share of ``normal`` flagged) and true positive rate (share of
        ``anomalous`` flagged) for each threshold, starting at (0, 0) and ending at (1, 1).
    thresholds : (T + 1,) float64 array
        The distinct scores in decreasing order, preceded by ``inf`` (nothing flagged).
    """
    normal, anomalous = _scores("normal", normal), _scores("anomalous", anomalous)
    thresholds = np.unique(np.concatenate([normal, anomalous]))[::-1]
    thresholds = np.concatenate([[np.inf], thresholds])
    neg, pos = np.sort(normal), np.sort(anomalous)
    fpr = (len(neg) - np.searchsorted(neg, thresholds, side="left")) / len(neg)
    tpr = (len(pos) - np.searchsorted(pos, thresholds, side="left")) / len(pos)
    return fpr, tpr, thresholds


def roc_auc(normal, anomalous) -> float:
    """Area under the ROC curve: the probability that an anomaly scores above a normal example.

    Computed as the Mann-Whitney statistic, ``P(a > n) + P(a = n) / 2`` over all pairs of an
    anomalous score ``a`` and a normal score ``n`` (ties count half), which equals the
    trapezoidal area under :func:`roc_curve`. 0.5: the score does not separate the two
    groups; 1: every anomaly scores above every normal example.

    Parameters
    ----------
    normal, anomalous : arrays of float
        Scores of the two groups (any lengths >= 1).

    Returns
    -------
    float in [0, 1]
    """
    normal, anomalous = _scores("normal", normal), _scores("anomalous", anomalous)
    neg = np.sort(normal)
    below = np.searchsorted(neg, anomalous, side="left")
    ties = np.searchsorted(neg, anomalous, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(neg) * len(anomalous)))


def image_patches(images: Sequence, n: int, size: int = MNIST_SIZE, zoom: int = 4,
                  seed: int = 0) -> np.ndarray:
    """Random square crops of images, shrunk by block averaging (e.g. natural images as 28x28).

    Each patch is a crop of ``size * zoom`` pixels at a random position of a randomly chosen
    image, reduced to ``size x size`` by averaging ``zoom x zoom`` blocks.

    Parameters
    ----------
    images : sequence of (H, W) float arrays, values in [0, 1]
        Source images, each at least ``size * zoom`` pixels high and wide.
    n : int >= 1
        Number of patches.
    size, zoom : int >= 1
        Output side and shrink factor.
    seed : int
        Seed of ``numpy.random.default_rng`` for the positions.

    Returns
    -------
    (n, size, size) float32 array, values in [0, 1].
    """
    n, size, zoom = _int("n", n, 1), _int("size", size, 1), _int("zoom", zoom, 1)
    sources = [_image(f"images[{i}]", im) for i, im in enumerate(images)]
    if not sources:
        raise ValueError("need at least one source image")
    side = size * zoom
    for i, im in enumerate(sources):
        if min(im.shape) < side:
            raise ValueError(f"images[{i}] has shape {im.shape}, smaller than the crop of "
                             f"{side} x {side} pixels (size * zoom)")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size))
    for j in range(n):
        im = sources[rng.integers(len(sources))]
        r = rng.integers(im.shape[0] - side + 1)
        c = rng.integers(im.shape[1] - side + 1)
        crop = im[r:r + side, c:c + side]
        out[j] = crop.reshape(size, zoom, size, zoom).mean(axis=(1, 3))
    return out.astype(np.float32)


def draw_letters(letters: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", size: int = MNIST_SIZE,
                 height: float = 20.0, supersample: int = 4) -> np.ndarray:
    """Capital letters drawn like MNIST digits: white strokes on black, centred, anti-aliased.

    Each glyph outline (DejaVu Sans, the font that ships with matplotlib) is scaled so that
    its larger side is ``height`` pixels, centred by its bounding box in a ``size x size``
    image and rasterised by testing ``supersample**2`` points per pixel (even-odd rule, so
    the holes of A, B, D ... stay open; the fraction inside is the grey level). No font
    renderer is involved, so the images are the same on every machine.

    Parameters
    ----------
    letters : str
        The characters to draw, one image each.
    size : int
        Image side (28 for MNIST).
    height : float
        Larger side of each glyph in pixels (MNIST digits fit in a 20 x 20 box).
    supersample : int
        Sub-samples per pixel side.

    Returns
    -------
    (len(letters), size, size) float32 array, values in [0, 1].
    """

    if not isinstance(letters, str) or not letters or any(ch.isspace() for ch in letters):
        raise ValueError(f"letters must be a non-empty string without spaces, got {letters!r}")
    size, supersample = _int("size", size, 1), _int("supersample", supersample, 1)
    height = _positive("height", height)
    font = FontProperties(family="DejaVu Sans")
    sub = (np.arange(size * supersample) + 0.5) / supersample  # sample centres, in pixels
    gx, gy = np.meshgrid(sub, sub)
    points = np.column_stack([gx.ravel(), gy.ravel()])
    out = np.empty((len(letters), size, size))
    for i, ch in enumerate(letters):
        path = TextPath((0, 0), ch, size=100, prop=font)
        box = path.get_extents()  # the outline's extent (CLOSEPOLY vertices are placeholders)
        lo, hi = box.min, box.max
        scale = height / max(hi[1] - lo[1], hi[0] - lo[0])
        centre = (lo + hi) / 2
        # glyph coordinates grow upwards, image rows downwards: flip y
        transformed = path.transformed(Affine2D().translate(-centre[0], -centre[1])
                                       .scale(scale, -scale).translate(size / 2, size / 2))
        inside = np.zeros(len(points), bool)
        for polygon in transformed.to_polygons():  # even-odd rule: holes flip the inside
            inside ^= MplPath(polygon).contains_points(points)
        inside = inside.reshape(size * supersample, size * supersample)
        out[i] = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- figures
def plot_error_histograms(groups: dict, threshold: float | None = None, bins: int = 40):
    """Histograms of reconstruction errors per group on a logarithmic axis, and a threshold.

    Parameters
    ----------
    groups : dict of name -> (n,) array of positive errors
    threshold : float, optional
        Drawn as a vertical dashed line.
    """

    values = {k: np.asarray(v, dtype=float).ravel() for k, v in groups.items()}
    everything = np.concatenate(list(values.values()))
    if everything.size == 0 or everything.min() <= 0:
        raise ValueError("errors must be positive numbers (the axis is logarithmic)")
    edges = np.logspace(np.log10(everything.min()) - 0.05, np.log10(everything.max()) + 0.05,
                        bins + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for name, v in values.items():
        ax.hist(v, bins=edges, density=False, weights=np.full(v.shape, 1 / v.size),
                histtype="stepfilled", alpha=0.45, label=f"{name} ({v.size})")
    if threshold is not None:
        ax.axvline(threshold, color="#444444", ls="--", lw=1.2, label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("reconstruction error (MSE per image, log scale)")
    ax.set_ylabel("share of the group")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roc(curves: dict):
    """ROC curves: ``curves`` maps a name to ``(fpr, tpr, auc)``; the diagonal is chance."""

    fig, ax = plt.subplots(figsize=(3.8, 3.6))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=1.8, label=f"{name} (AUC {auc:.3f})", drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="#999999", ls=":", lw=1)
    ax.set_xlabel("false positive rate (digits flagged)")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
