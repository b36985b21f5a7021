"""Neurons, activation functions and the universal-approximation construction (chapter 2).

The pieces, in the order the chapter builds them:

* activation functions and their derivatives (:func:`activation`, :func:`activation_derivative`);
* a steep sigmoid after a linear block is a step at ``s = -b / w`` (:func:`sigmoid`);
* two steps of opposite sign make a rect (:func:`rect`), and sums of rects approximate any
  continuous function on an interval (:func:`rect_sum`, :func:`rect_approximation`).

The demo factories at the end draw these; their browser twins are in ``demo/approximation.js``.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np

from .demo import (Choice, Demo, HLine, JsTwin, Line, Panel, Points, Slider, Text, VLine,
                   register)

__all__ = [
    "ACTIVATIONS", "sigmoid", "activation", "activation_derivative", "step_at", "rect", "rect_sum",
    "rect_approximation", "target_curve", "max_error", "activation_demo", "sigmoid_demo",
    "two_neurons_demo", "two_rects_demo", "rect_sum_demo",
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


@register("approximation.activation")
def activation_demo() -> Demo:
    """Pick an activation function; leaky ReLU's negative slope ``alpha`` is a slider."""
    return Demo(
        "approximation.activation", "Activation functions and their derivatives",
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


@register("approximation.sigmoid")
def sigmoid_demo() -> Demo:
    """A sigmoid after a linear block, ``sigmoid(w x + b)``: a step at ``s = -b / w`` for large w."""
    return Demo(
        "approximation.sigmoid", "Sigmoid after a linear block: σ(w·x + b)",
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


@register("approximation.two_neurons")
def two_neurons_demo() -> Demo:
    """Two steep neurons added by an output neuron with weights w1, w2."""
    pos = dict(min=0.0, max=1.0, step=0.05, fmt=".2f")
    wgt = dict(min=-2.0, max=2.0, step=0.1, fmt=".1f")
    return Demo(
        "approximation.two_neurons", "Two neurons: w₁·σ_s₁(x) + w₂·σ_s₂(x)",
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


@register("approximation.two_rects")
def two_rects_demo() -> Demo:
    """Two rects, each made of two neurons: start, stop and height of each."""
    pos = dict(min=0.0, max=1.0, step=0.05, fmt=".2f")
    hgt = dict(min=-2.0, max=2.0, step=0.1, fmt=".1f")
    return Demo(
        "approximation.two_rects", "Two rects from four neurons",
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


@register("approximation.rect_sum")
def rect_sum_demo() -> Demo:
    """N rects of equal width approximate a curve; the maximum error falls as N grows."""
    return Demo(
        "approximation.rect_sum", "N rects approximate a curve",
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
