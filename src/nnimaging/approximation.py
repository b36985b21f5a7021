"""Neurons, activation functions and the universal-approximation construction (chapter 2).

The pieces, in the order the chapter builds them:

* activation functions and their derivatives (:func:`activation`, :func:`activation_derivative`);
* a steep sigmoid after a linear block is a step at ``s = -b / w`` (:func:`sigmoid`);
* two steps of opposite sign make a rect (:func:`rect`), and sums of rects approximate any
  continuous function on an interval (:func:`rect_sum`, :func:`rect_approximation`);
* with ReLUs instead: two make a ramp (:func:`ramp`), three a hat (:func:`hat`), and sums of hats
  are piecewise-linear interpolation (:func:`hat_sum`, :func:`hat_approximation`), whose error falls
  like ``1/N^2`` for smooth targets (:func:`convergence_rate`);
* width against depth: composing the two-ReLU tent map (:func:`tent`) ``k`` times gives a sawtooth
  (:func:`sawtooth`) with ``2^k`` linear pieces (:func:`count_linear_pieces`), while one hidden
  layer needs one ReLU per kink (:func:`interpolant_as_relus`, :func:`relu_network`).

The demo factories at the end draw these; their browser twins are in ``demo/approximation.js``.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from ._checks import positive_int
from .demo import (Choice, Demo, HLine, JsTwin, Line, Panel, Points, Slider, Text, VLine,
                   register)

__all__ = [
    "ACTIVATIONS", "sigmoid", "activation", "activation_derivative", "step_at", "rect", "rect_sum",
    "rect_approximation", "target_curve", "max_error", "activation_demo", "sigmoid_demo",
    "two_neurons_demo", "two_rects_demo", "rect_sum_demo", "relu", "ramp", "hat", "hat_sum",
    "hat_approximation", "HAT_TARGETS", "hat_target", "convergence_rate", "tent", "sawtooth",
    "count_linear_pieces", "interpolant_as_relus", "relu_network", "plot_sawtooths",
    "hat_sum_demo",
]

STEEPNESS = 1000.0
"""Weight ``w`` of the steep sigmoids that stand in for unit steps (as in the lecture notes)."""

ACTIVATIONS = ("step", "sigmoid", "tanh", "ReLU", "leaky ReLU")


def sigmoid(z):
    """Logistic sigmoid ``1 / (1 + exp(-z))``, computed as ``(1 + tanh(z / 2)) / 2``.

    The tanh form is exactly the same function but never overflows (``exp(-z)`` does for
    ``z < -709``), which matters with the steep weights used below.
    """
    return 0.5 * (1.0 + np.tanh(np.asarray(z, dtype=float) / 2.0))


def activation(name: str, z, alpha: float = 0.1) -> np.ndarray:
    """Evaluate the activation function ``name`` (one of :data:`ACTIVATIONS`) at ``z``.

    ``alpha`` is the slope of leaky ReLU for negative inputs.
    """
    z = np.asarray(z, dtype=float)
    if name == "step":
        return (z >= 0).astype(float)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "ReLU":
        return np.maximum(z, 0.0)
    if name == "leaky ReLU":
        return np.where(z >= 0, z, alpha * z)
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def activation_derivative(name: str, z, alpha: float = 0.1) -> np.ndarray:
    """Derivative of :func:`activation` with respect to ``z``.

    The step's derivative is 0 everywhere except at 0, where it does not exist; ReLU's and leaky
    ReLU's kink at 0 gets the right-hand value (what PyTorch uses is 0 for ReLU at exactly 0; the
    single point does not matter for learning).
    """
    z = np.asarray(z, dtype=float)
    if name == "step":
        return np.zeros_like(z)
    if name == "sigmoid":
        s = sigmoid(z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "ReLU":
        return (z > 0).astype(float)
    if name == "leaky ReLU":
        return np.where(z > 0, 1.0, alpha)
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def step_at(x, s: float, w: float = STEEPNESS) -> np.ndarray:
    """A steep sigmoid ``sigmoid(w (x - s))``: almost a unit step located at ``s``.

    It is one neuron ``sigmoid(w x + b)`` with bias ``b = -w s``.
    """
    return sigmoid(w * (np.asarray(x, dtype=float) - s))


def rect(x, start: float, stop: float, height: float, w: float = STEEPNESS) -> np.ndarray:
    """Two neurons whose steps cancel: ``height`` on ``[start, stop]``, about 0 elsewhere."""
    return height * step_at(x, start, w) - height * step_at(x, stop, w)


def rect_sum(x, starts, stops, heights, w: float = STEEPNESS) -> np.ndarray:
    """Sum of rects ``sum_i rect(x, starts[i], stops[i], heights[i])`` (a network with
    ``2 len(starts)`` hidden neurons and one output neuron)."""
    starts, stops, heights = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (starts, stops, heights))
    if not starts.shape == stops.shape == heights.shape or starts.ndim != 1:
        raise ValueError("starts, stops and heights must be 1-D arrays of the same length, got shapes "
                         f"{starts.shape}, {stops.shape}, {heights.shape}")
    x = np.asarray(x, dtype=float)
    total = np.zeros_like(x)
    for a, b, h in zip(starts, stops, heights):
        total = total + rect(x, a, b, h, w)
    return total


def rect_approximation(f: Callable[[np.ndarray], np.ndarray], n: int, x, lo: float = 0.0,
                       hi: float = 1.0, w: float = STEEPNESS) -> np.ndarray:
    """Approximate ``f`` on ``[lo, hi]`` by ``n`` rects of equal width.

    Each rect's height is ``f`` at the middle of its interval. Returns the sum of rects at ``x``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    edges = np.linspace(lo, hi, int(n) + 1)
    mids = (edges[:-1] + edges[1:]) / 2
    return rect_sum(x, edges[:-1], edges[1:], f(mids), w)


def target_curve(x) -> np.ndarray:
    """The curve the rect sums approximate: ``0.6 sin(2 pi x) + 0.3 sin(5 pi x)`` on [0, 1],
    0 outside (it is 0 at both ends, so the curve is continuous)."""
    x = np.asarray(x, dtype=float)
    inside = (x >= 0) & (x <= 1)
    return np.where(inside, 0.6 * np.sin(2 * np.pi * x) + 0.3 * np.sin(5 * np.pi * x), 0.0)


def max_error(approximation, target) -> float:
    """Largest absolute difference between two sampled curves."""
    return float(np.max(np.abs(np.asarray(approximation) - np.asarray(target))))


# --------------------------------------------------------------------------- demos
_JS = "approximation.js"


def _activation_result(fn: str, alpha: float) -> dict:
    z = np.linspace(-4, 4, 801)
    return {"z": z, "f": activation(fn, z, alpha), "df": activation_derivative(fn, z, alpha)}


@register
def activation_demo() -> Demo:
    """Pick an activation function; leaky ReLU's negative slope ``alpha`` is a slider."""
    return Demo(
        "Activation functions and their derivatives",
        [Choice("fn", ACTIVATIONS, "leaky ReLU", label="function"),
         Slider("alpha", 0.0, 0.5, 0.01, 0.1, label="α (leaky)", fmt=".2f")],
        _activation_result,
        [Panel([HLine(0.0, dash=False, color="#999999"), Line("z", "f")], title="{fn}(z)",
               xlabel="z", xlim=(-4, 4), ylim=(-1.5, 4.2)),
         Panel([HLine(0.0, dash=False, color="#999999"), Line("z", "df", color="#d62728")],
               title="derivative", xlabel="z", xlim=(-4, 4), ylim=(-0.2, 1.2))],
        alt="Two plots: the chosen activation function of z from -4 to 4, and its derivative.",
        js=JsTwin.from_package(_JS, "activationResult"))


def _sigmoid_result(w: float, b: float) -> dict:
    x = np.linspace(-0.5, 1.5, 801)
    return {"x": x, "y": sigmoid(w * x + b), "s": -b / w}


@register
def sigmoid_demo() -> Demo:
    """A sigmoid after a linear block, ``sigmoid(w x + b)``: a step at ``s = -b / w`` for large w."""
    return Demo(
        "Sigmoid after a linear block: σ(w·x + b)",
        [Slider("w", 1, 200, 1, 8), Slider("b", -100, 100, 1, -4)],
        _sigmoid_result,
        [Panel([Line("x", "y", label="σ(w·x + b)"), VLine("s", label="s = -b/w"),
                Text("s = -b/w = {s:.3f}", 0.03, 0.9)],
               xlabel="x", xlim=(-0.5, 1.5), ylim=(-0.05, 1.05), legend=True)],
        alt="Plot of the sigmoid of w times x plus b for x from -0.5 to 1.5, with a dashed "
            "vertical line at the step position s = -b/w.",
        js=JsTwin.from_package(_JS, "sigmoidResult"))


def _two_neurons_result(s1: float, s2: float, w1: float, w2: float) -> dict:
    x = np.linspace(-0.2, 1.2, 1401)
    n1, n2 = w1 * step_at(x, s1), w2 * step_at(x, s2)
    return {"x": x, "n1": n1, "n2": n2, "y": n1 + n2}


@register
def two_neurons_demo() -> Demo:
    """Two steep neurons added by an output neuron with weights w1, w2."""
    pos = dict(min=0.0, max=1.0, step=0.05, fmt=".2f")
    wgt = dict(min=-2.0, max=2.0, step=0.1, fmt=".1f")
    return Demo(
        "Two neurons: w₁·σ_s₁(x) + w₂·σ_s₂(x)",
        [Slider("s1", value=0.2, label="s₁", **pos), Slider("s2", value=0.6, label="s₂", **pos),
         Slider("w1", value=0.4, label="w₁", **wgt), Slider("w2", value=0.6, label="w₂", **wgt)],
        _two_neurons_result,
        [Panel([HLine(0.0, dash=False, color="#999999"),
                Line("x", "n1", label="w₁·σ_s₁", dash=True, width=1.5),
                Line("x", "n2", label="w₂·σ_s₂", dash=True, width=1.5),
                Line("x", "y", label="sum", color="#000000")],
               xlabel="x", xlim=(-0.2, 1.2), ylim=(-4.2, 4.2), legend=True)],
        alt="Plot of two weighted step functions at positions s1 and s2 (dashed) and their sum "
            "(solid), for x from -0.2 to 1.2.",
        js=JsTwin.from_package(_JS, "twoNeuronsResult"))


def _two_rects_result(s11, s12, s21, s22, h1, h2) -> dict:
    x = np.linspace(-0.2, 1.2, 1401)
    r1, r2 = rect(x, s11, s12, h1), rect(x, s21, s22, h2)
    return {"x": x, "r1": r1, "r2": r2, "y": r1 + r2}


@register
def two_rects_demo() -> Demo:
    """Two rects, each made of two neurons: start, stop and height of each."""
    pos = dict(min=0.0, max=1.0, step=0.05, fmt=".2f")
    hgt = dict(min=-2.0, max=2.0, step=0.1, fmt=".1f")
    return Demo(
        "Two rects from four neurons",
        [Slider("s11", value=0.2, label="s₁₁", **pos), Slider("s12", value=0.3, label="s₁₂", **pos),
         Slider("s21", value=0.4, label="s₂₁", **pos), Slider("s22", value=0.6, label="s₂₂", **pos),
         Slider("h1", value=0.3, label="h₁", **hgt), Slider("h2", value=-0.4, label="h₂", **hgt)],
        _two_rects_result,
        [Panel([HLine(0.0, dash=False, color="#999999"),
                Line("x", "r1", label="rect 1", dash=True, width=1.5),
                Line("x", "r2", label="rect 2", dash=True, width=1.5),
                Line("x", "y", label="sum", color="#000000")],
               xlabel="x", xlim=(-0.2, 1.2), ylim=(-4.2, 4.2), legend=True)],
        alt="Plot of two rect functions with adjustable start, stop and height (dashed) and their "
            "sum (solid), for x from -0.2 to 1.2.",
        js=JsTwin.from_package(_JS, "twoRectsResult"))


N_MAX = 50


@functools.lru_cache(maxsize=1)
def _rect_errors(x_key: tuple) -> np.ndarray:
    """Max error of N = 1..N_MAX rects on the grid ``x`` (cached: it does not depend on the slider)."""
    x = np.array(x_key)
    target = target_curve(x)
    return np.array([max_error(rect_approximation(target_curve, k, x), target)
                     for k in range(1, N_MAX + 1)])


def _rect_sum_result(n: int) -> dict:
    x = np.linspace(-0.1, 1.1, 1201)
    target = target_curve(x)
    approx = rect_approximation(target_curve, n, x)
    ns = np.arange(1, N_MAX + 1)
    errors = _rect_errors(tuple(x))
    return {"x": x, "n": n, "target": target, "approx": approx, "err": max_error(approx, target),
            "ns": ns, "errors": errors, "n_now": np.array([n]), "err_now": np.array([errors[n - 1]])}


@register
def rect_sum_demo() -> Demo:
    """N rects of equal width approximate a curve; the maximum error falls as N grows."""
    return Demo(
        "N rects approximate a curve",
        [Slider("n", 1, N_MAX, 1, 5, label="N")],
        _rect_sum_result,
        [Panel([Line("x", "target", label="target", color="#999999", width=3),
                Line("x", "approx", label="sum of N rects", color="#1f77b4")],
               title="N = {n:d}, max error = {err:.3f}", xlabel="x", xlim=(-0.1, 1.1),
               ylim=(-1.0, 1.0), legend=True),
         Panel([Line("ns", "errors", color="#7f7f7f"), Points("n_now", "err_now", color="#d62728",
                                                               size=7)],
               title="max error vs N", xlabel="N", ylim=(0, 0.8))],
        alt="Left: a smooth target curve and its approximation by N rects of equal width. "
            "Right: the maximum approximation error for N from 1 to 50, with the current N marked.",
        js=JsTwin.from_package(_JS, "rectSumResult"))


# --------------------------------------------------------------------------- ReLU networks
def relu(z) -> np.ndarray:
    """The rectified linear unit ``max(z, 0)``."""
    return np.maximum(np.asarray(z, dtype=float), 0.0)


def _increasing(name: str, *points: float) -> None:
    values = [float(p) for p in points]
    if not all(np.isfinite(values)) or any(a >= b for a, b in zip(values, values[1:])):
        raise ValueError(f"{name}: expected finite, strictly increasing positions, got {tuple(points)}")


def ramp(x, start: float, stop: float) -> np.ndarray:
    """Two ReLUs: ``(relu(x - start) - relu(x - stop)) / (stop - start)``.

    0 left of ``start``, 1 right of ``stop``, linear in between (``start < stop``).
    """
    _increasing("ramp(start, stop)", start, stop)
    x = np.asarray(x, dtype=float)
    return (relu(x - start) - relu(x - stop)) / (stop - start)


def hat(x, left: float, center: float, right: float) -> np.ndarray:
    """Three ReLUs: a ramp up on ``[left, center]`` minus a ramp down on ``[center, right]``,

    ``relu(x - l) / (c - l) - (1 / (c - l) + 1 / (r - c)) relu(x - c) + relu(x - r) / (r - c)``:
    1 at ``center``, 0 outside ``[left, right]``, linear in between.
    """
    _increasing("hat(left, center, right)", left, center, right)
    x = np.asarray(x, dtype=float)
    up, down = 1.0 / (center - left), 1.0 / (right - center)
    return up * relu(x - left) - (up + down) * relu(x - center) + down * relu(x - right)


def hat_sum(x, knots, values) -> np.ndarray:
    """Sum of ``values[i] * hat`` centred at ``knots[i]`` (a network with ``3 len(knots)`` ReLUs).

    Each hat reaches from the previous knot to the next one (the two end hats reach as far
    outside as their neighbour is inside), so on ``[knots[0], knots[-1]]`` the sum is the
    piecewise-linear interpolation of the points ``(knots, values)``.

    Parameters
    ----------
    x : array of floats
        Where to evaluate.
    knots : (n,) floats, strictly increasing, n >= 2
    values : (n,) floats
    """
    knots, values = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (knots, values))
    if knots.ndim != 1 or knots.shape != values.shape or len(knots) < 2:
        raise ValueError("knots and values must be 1-D arrays of the same length (at least 2), got "
                         f"shapes {knots.shape} and {values.shape}")
    _increasing("hat_sum knots", *knots)
    edges = np.concatenate([[2 * knots[0] - knots[1]], knots, [2 * knots[-1] - knots[-2]]])
    x = np.asarray(x, dtype=float)
    total = np.zeros_like(x)
    for i, v in enumerate(values):
        total = total + v * hat(x, edges[i], edges[i + 1], edges[i + 2])
    return total


def hat_approximation(f: Callable[[np.ndarray], np.ndarray], n: int, x, lo: float = 0.0,
                      hi: float = 1.0) -> np.ndarray:
    """Approximate ``f`` on ``[lo, hi]`` by ``n`` hats centred on ``n`` equally spaced knots,
    each scaled by ``f`` at its knot: the piecewise-linear interpolant of ``f`` (``n >= 2``)."""
    n = positive_int("n (the number of hats)", n, minimum=2)
    knots = np.linspace(lo, hi, n)
    return hat_sum(x, knots, f(knots))


def _kink_curve(x) -> np.ndarray:
    return 0.8 - 1.6 * np.abs(np.asarray(x, dtype=float) - 1 / np.pi)


def _sqrt_curve(x) -> np.ndarray:
    return 0.9 * np.sqrt(np.clip(np.asarray(x, dtype=float), 0.0, None)) - 0.45


HAT_TARGETS = {"smooth": target_curve, "kink": _kink_curve, "square root": _sqrt_curve}
"""Targets of the hat demo on [0, 1]: the smooth curve of the rect demo, ``0.8 - 1.6 |x - 1/pi|``
(a kink that never falls on a knot) and ``0.9 sqrt(x) - 0.45`` (infinite slope at 0)."""


def hat_target(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """The target function called ``name`` in :data:`HAT_TARGETS`."""
    if name not in HAT_TARGETS:
        raise ValueError(f"unknown target {name!r}; expected one of {tuple(HAT_TARGETS)}")
    return HAT_TARGETS[name]


def convergence_rate(ns, errors) -> float:
    """The exponent ``p`` of ``error ~ C / n^p``: minus the least-squares slope of
    ``log(error)`` against ``log(n)``.

    Parameters
    ----------
    ns, errors : (m,) positive floats, m >= 2, with at least two different ``ns``
    """
    ns, errors = (np.asarray(a, dtype=float) for a in (ns, errors))
    if ns.ndim != 1 or ns.shape != errors.shape or len(ns) < 2:
        raise ValueError("ns and errors must be 1-D arrays of the same length (at least 2), got "
                         f"shapes {ns.shape} and {errors.shape}")
    if not (np.all(np.isfinite(ns)) and np.all(np.isfinite(errors)) and np.all(ns > 0)
            and np.all(errors > 0)):
        raise ValueError("ns and errors must be finite and positive (their logarithms are fitted)")
    if np.ptp(ns) == 0:
        raise ValueError("ns must hold at least two different values")
    slope = np.polyfit(np.log(ns), np.log(errors), 1)[0]
    return float(-slope)


def tent(x) -> np.ndarray:
    """The tent map on [0, 1] from two ReLUs, ``2 relu(x) - 4 relu(x - 1/2)``:
    ``2x`` up to 1/2, ``2 - 2x`` after, so it maps [0, 1] onto [0, 1]."""
    x = np.asarray(x, dtype=float)
    return 2 * relu(x) - 4 * relu(x - 0.5)


def sawtooth(x, k: int) -> np.ndarray:
    """The tent map composed ``k`` times: a network of depth ``k`` with 2 ReLUs per layer.

    On [0, 1] it is a sawtooth of ``2^(k-1)`` teeth, that is ``2^k`` linear pieces (``k >= 0``;
    ``k = 0`` is the identity).
    """
    k = positive_int("k (the number of compositions)", k, minimum=0)
    y = np.asarray(x, dtype=float)
    for _ in range(k):
        y = tent(y)
    return y


def count_linear_pieces(x, y, tol: float = 1e-9) -> int:
    """Number of linear pieces of a sampled piecewise-linear function.

    One plus the number of samples where the slope between neighbouring samples changes by more
    than ``tol`` (relative to the largest slope). Exact when every kink is a sample point (a kink
    between two samples is counted twice).

    Parameters
    ----------
    x : (n,) floats, strictly increasing, n >= 2
    y : (n,) floats
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(f"x and y must be 1-D arrays of the same length (at least 2), got shapes "
                         f"{x.shape} and {y.shape}")
    if not np.all(np.diff(x) > 0):
        raise ValueError("x must be strictly increasing")
    slopes = np.diff(y) / np.diff(x)
    scale = max(1.0, float(np.max(np.abs(slopes))))
    return 1 + int(np.sum(np.abs(np.diff(slopes)) > tol * scale))


def interpolant_as_relus(knots, values):
    """One hidden layer of ReLUs that equals the piecewise-linear interpolant of
    ``(knots, values)`` on ``[knots[0], knots[-1]]``: one ReLU per kink.

    Returns ``(bias, positions, weights)`` with ``f(x) = bias + sum_j weights[j] relu(x -
    positions[j])`` (see :func:`relu_network`): ``positions`` are ``knots[:-1]``, ``weights[0]``
    is the first slope and ``weights[j]`` the change of slope at ``knots[j]``.
    """
    knots, values = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (knots, values))
    if knots.ndim != 1 or knots.shape != values.shape or len(knots) < 2:
        raise ValueError("knots and values must be 1-D arrays of the same length (at least 2), got "
                         f"shapes {knots.shape} and {values.shape}")
    _increasing("interpolant_as_relus knots", *knots)
    slopes = np.diff(values) / np.diff(knots)
    weights = np.concatenate([[slopes[0]], np.diff(slopes)])
    return float(values[0]), knots[:-1].copy(), weights


def relu_network(x, bias: float, positions, weights) -> np.ndarray:
    """A one-hidden-layer ReLU network of a scalar: ``bias + sum_j weights[j] relu(x - positions[j])``."""
    positions, weights = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (positions, weights))
    if positions.ndim != 1 or positions.shape != weights.shape:
        raise ValueError("positions and weights must be 1-D arrays of the same length, got shapes "
                         f"{positions.shape} and {weights.shape}")
    x = np.asarray(x, dtype=float)
    return bias + relu(x[..., None] - positions) @ weights


def plot_sawtooths(ks, units_deep, units_shallow, pieces):
    """Left: the sawtooths for ``ks``; right: linear pieces against ReLU units, deep and shallow.

    Parameters
    ----------
    ks : (m,) ints
        Depths whose sawtooth is drawn (at most 4 look readable).
    units_deep, units_shallow, pieces : (n,) ints
        For ``k = 1..n``: ReLUs of the deep and of the one-hidden-layer network, and their pieces.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.3))
    x = np.linspace(0, 1, 2 ** 10 + 1)
    for k in ks:
        axes[0].plot(x, sawtooth(x, k), label=f"k = {k}", linewidth=1.2)
    axes[0].set_xlabel("x")
    axes[0].set_title("tent map composed k times")
    axes[0].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=len(ks),
                   frameon=False)
    axes[1].semilogy(units_deep, pieces, "o-", label="deep: 2 ReLUs per layer")
    axes[1].semilogy(units_shallow, pieces, "s--", label="one hidden layer")
    axes[1].set_xlabel("ReLU units")
    axes[1].set_ylabel("linear pieces")
    axes[1].set_xscale("log", base=2)
    axes[1].set_yscale("log", base=2)
    axes[1].set_title("the same functions, two ways")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


HAT_N_MAX = 50
_HAT_FIT_FROM = 10


@functools.lru_cache(maxsize=len(HAT_TARGETS))
def _hat_errors(target: str) -> np.ndarray:
    """Max error of N = 2..HAT_N_MAX hats on the demo's grid (cached: it does not depend on N)."""
    f, x = hat_target(target), np.linspace(0, 1, 1001)
    return np.array([max_error(hat_approximation(f, n, x), f(x)) for n in range(2, HAT_N_MAX + 1)])


def _hat_sum_result(target: str, n: int) -> dict:
    f, x = hat_target(target), np.linspace(0, 1, 1001)
    knots = np.linspace(0, 1, n)
    approx = hat_sum(x, knots, f(knots))
    ns = np.arange(2, HAT_N_MAX + 1)
    errors = _hat_errors(target)
    log_n, log_err = np.log10(ns), np.log10(errors)
    fit = ns >= _HAT_FIT_FROM
    return {"x": x, "n": n, "units": 3 * n, "target": f(x), "approx": approx,
            "err": max_error(approx, f(x)), "knots": knots, "values": f(knots),
            "log_n": log_n, "log_err": log_err, "ref": log_err[-1] - 2 * (log_n - log_n[-1]),
            "slope": -convergence_rate(ns[fit], errors[fit]),
            "log_n_now": np.array([log_n[n - 2]]), "log_err_now": np.array([log_err[n - 2]])}


@register
def hat_sum_demo() -> Demo:
    """N hats (3 ReLUs each) interpolate a target; its error against N on log-log axes."""
    return Demo(
        "N hats of three ReLUs interpolate a curve",
        [Choice("target", tuple(HAT_TARGETS), "smooth", label="target"),
         Slider("n", 2, HAT_N_MAX, 1, 6, label="N")],
        _hat_sum_result,
        [Panel([Line("x", "target", label="target", color="#999999", width=3),
                Line("x", "approx", label="sum of N hats", color="#1f77b4"),
                Points("knots", "values", label="knots", color="#d62728", size=4)],
               title="N = {n:d} hats ({units:d} ReLUs), max error = {err:.4f}", xlabel="x",
               xlim=(0, 1), ylim=(-1.0, 1.0), legend=True),
         Panel([Line("log_n", "ref", label="slope −2", color="#999999", dash=True, width=1.5),
                Line("log_n", "log_err", label="max error", color="#7f7f7f"),
                Points("log_n_now", "log_err_now", color="#d62728", size=7),
                Text("fitted slope (N ≥ 10): {slope:.2f}", 0.05, 0.08)],
               title="log₁₀ max error vs log₁₀ N", xlabel="log₁₀ N", xlim=(0.25, 1.75),
               ylim=(-4.0, 0.5), legend=True)],
        alt="Left: a target curve on [0, 1] (smooth, with a kink, or a square root), its values at "
            "N equally spaced knots and the sum of N hat functions through them, a piecewise-linear "
            "interpolation. Right: the logarithm of the maximum error against the logarithm of N "
            "for N from 2 to 50, with the current N marked and a dashed reference line of slope -2.",
        js=JsTwin.from_package(_JS, "hatSumResult"))
