"""Derivatives by hand, by finite differences and by backpropagation (chapter 3).

The pieces, in the order the chapter uses them:

* gradient descent on a quadratic loss landscape (:func:`quadratic_loss`,
  :func:`quadratic_gradient`, :func:`gradient_descent`, :func:`critical_learning_rate`);
* numerical derivatives (:func:`finite_difference`, :func:`numerical_gradient`), and the
  Jacobian of a vector function in either layout (:func:`numerical_jacobian`);
* backpropagation through ``y = log(x)^2`` written out by hand: every :class:`Value` carries
  its number and the gradient of the output with respect to it (:func:`log_forward`,
  :func:`log_backward`, :func:`square_forward`, :func:`square_backward`, :func:`log_square`);
* PyTorch autograd functions with hand-written backward passes (:class:`Multiply`,
  :class:`LinearFunction`, :class:`ReLUFunction`) and the layers built on them
  (:class:`Linear`, :class:`ReLU`), which are drop-in replacements for ``nn.Linear`` and
  ``nn.ReLU``.

The chapter's comparison of an MLP and a small CNN at inpainting digits is in
:mod:`nnimaging.inpainting`.

The chapter shows these pieces with ``nnimaging.show_source``, so the book displays the same code
the tests check.

The demo factories at the end draw gradient descent and the ``log(x)^2`` computation graph;
their browser twins are in ``demo/autodiff.js``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import _checks
from .demo import Demo, JsTwin, Line, Panel, Points, Slider, Text, register

__all__ = [
    "quadratic_loss", "quadratic_gradient", "ellipse_contours", "gradient_descent", "critical_learning_rate",
    "finite_difference", "numerical_gradient", "numerical_jacobian",
    "Value", "log_forward", "log_backward", "square_forward", "square_backward", "log_square",
    "Multiply", "LinearFunction", "ReLUFunction", "Linear", "ReLU",
    "gradient_descent_demo", "log_square_graph_demo",
]


# --------------------------------------------------------------------------- gradient descent
def quadratic_loss(theta, curvatures) -> np.ndarray:
    """The quadratic bowl ``L(theta) = 1/2 * sum_i curvatures[i] * theta[i]**2``.

    Parameters
    ----------
    theta : (..., D) array
        One parameter vector or a stack of them (for example a trajectory ``(K, D)``).
    curvatures : (D,) array of positive floats
        The second derivatives (Hessian eigenvalues) along each axis.

    Returns
    -------
    float array of shape ``theta.shape[:-1]``
    """
    lam = _checks.vector("curvatures", curvatures)
    theta = np.asarray(theta, dtype=float)
    if theta.shape[-1:] != lam.shape:
        raise ValueError(f"theta must end in a dimension of size {lam.size} (one per curvature), "
                         f"got shape {theta.shape}")
    return 0.5 * np.sum(lam * theta**2, axis=-1)


def quadratic_gradient(theta, curvatures) -> np.ndarray:
    """Gradient of :func:`quadratic_loss`: ``curvatures * theta``, same shape as ``theta``."""
    lam = _checks.vector("curvatures", curvatures)
    theta = np.asarray(theta, dtype=float)
    if theta.shape[-1:] != lam.shape:
        raise ValueError(f"theta must end in a dimension of size {lam.size} (one per curvature), "
                         f"got shape {theta.shape}")
    return lam * theta


def gradient_descent(grad: Callable[[np.ndarray], np.ndarray], theta0, lr: float,
                     steps: int) -> np.ndarray:
    """Run ``theta <- theta - lr * grad(theta)`` for ``steps`` steps.

    Parameters
    ----------
    grad : callable
        Maps a parameter vector ``(D,)`` to the gradient of the loss there, shape ``(D,)``.
    theta0 : (D,) array
        Starting point.
    lr : float
        Learning rate (step size), > 0.
    steps : int
        Number of updates, >= 0.

    Returns
    -------
    (steps + 1, D) float64 array
        The iterates, starting with ``theta0``. Divergent runs may contain ``inf`` or ``nan``.
    """
    theta = _checks.vector("theta0", theta0).copy()
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    path = [theta.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(int(steps)):
            theta = theta - lr * np.asarray(grad(theta), dtype=float)
            path.append(theta.copy())
    return np.array(path)


def critical_learning_rate(curvatures) -> float:
    """Largest stable learning rate of gradient descent on :func:`quadratic_loss`: ``2 / max(curvatures)``.

    Along axis ``i`` one step multiplies ``theta[i]`` by ``1 - lr * curvatures[i]``; the iterates
    shrink on every axis exactly when all these factors have magnitude below 1.
    """
    lam = _checks.vector("curvatures", curvatures)
    if np.any(lam <= 0):
        raise ValueError(f"curvatures must be positive, got {lam.tolist()}")
    return float(2.0 / lam.max())


# --------------------------------------------------------------------------- numerical derivatives
def finite_difference(f: Callable[[float], float], x: float, h: float,
                      scheme: str = "central") -> float:
    """Approximate ``f'(x)`` with a finite difference of step ``h``.

    ``scheme="forward"``: ``(f(x + h) - f(x)) / h``, error ``O(h)``;
    ``scheme="central"``: ``(f(x + h) - f(x - h)) / (2 h)``, error ``O(h**2)``.
    Both also carry a round-off error of about ``eps * |f(x)| / h``, which grows as ``h`` shrinks.
    """
    if not h > 0:
        raise ValueError(f"step h must be > 0, got {h}")
    if scheme == "forward":
        return (f(x + h) - f(x)) / h
    if scheme == "central":
        return (f(x + h) - f(x - h)) / (2 * h)
    raise ValueError(f"scheme must be 'forward' or 'central', got {scheme!r}")


def numerical_gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       h: float = 1e-6) -> torch.Tensor:
    """Central-difference gradient of a scalar function of a tensor, one entry at a time.

    Parameters
    ----------
    f : callable
        Maps a tensor shaped like ``x`` to a scalar (0-d tensor or float).
    x : float64 tensor of any shape
        The point. Float64 is required: with float32 the round-off error of the difference
        quotient (about ``1e-7 / h``) swamps the derivative.
    h : float
        Step.

    Returns
    -------
    float64 tensor shaped like ``x``: ``(f(x + h e_i) - f(x - h e_i)) / (2 h)`` at entry ``i``.
    """
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float64:
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a float64 tensor, got {got}")
    if not h > 0:
        raise ValueError(f"step h must be > 0, got {h}")
    x = x.detach().clone()
    grad = torch.zeros_like(x)
    flat, gflat = x.view(-1), grad.view(-1)
    with torch.no_grad():
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + h
            up = float(f(x))
            flat[i] = old - h
            down = float(f(x))
            flat[i] = old
            gflat[i] = (up - down) / (2 * h)
    return grad


def numerical_jacobian(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                       layout: str = "numerator", h: float = 1e-6) -> torch.Tensor:
    """Central-difference Jacobian of a vector function ``h = f(x)``, in either layout.

    Column ``j`` of the numerator-layout Jacobian is ``(f(x + h e_j) - f(x - h e_j)) / (2 h)``.

    Parameters
    ----------
    f : callable
        Maps a 1-D float64 tensor of length ``n`` to a 1-D tensor of length ``m``.
    x : (n,) float64 tensor
        The point.
    layout : {"numerator", "denominator"}
        ``"numerator"`` (the book's, and ``torch.autograd.functional.jacobian``'s): shape
        ``(m, n)``, entry ``(i, j)`` is ``d h_i / d x_j``, one row per output.
        ``"denominator"``: the transpose, shape ``(n, m)``, one row per input.
    h : float
        Step, > 0.

    Returns
    -------
    float64 tensor of shape ``(m, n)`` or ``(n, m)``
    """
    if layout not in ("numerator", "denominator"):
        raise ValueError(f"layout must be 'numerator' or 'denominator', got {layout!r}")
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float64 or x.ndim != 1:
        got = f"{x.dtype} of shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"x must be a 1-D float64 tensor, got {got}")
    _checks.positive_number("h", h)
    x = x.detach()
    columns = []
    with torch.no_grad():
        for j in range(x.numel()):
            step = torch.zeros_like(x)
            step[j] = h
            up, down = f(x + step), f(x - step)
            if not isinstance(up, torch.Tensor) or up.ndim != 1:
                raise ValueError(f"f must return a 1-D tensor, got {type(up).__name__} "
                                 f"{tuple(getattr(up, 'shape', ()))}")
            columns.append((up - down).double() / (2 * h))
    jac = torch.stack(columns, dim=1)
    return jac if layout == "numerator" else jac.T


# --------------------------------------------------------------------------- y = log(x)^2 by hand
@dataclass
class Value:
    """A number in a computation graph, and the gradient of the output with respect to it.

    The forward pass fills ``data``; the backward pass fills ``grad`` (it starts at 0 and
    backward steps *add* to it, because a value used twice receives gradient from both uses).
    """

    data: float
    grad: float = 0.0


def log_forward(x: Value) -> Value:
    """``v = log(x)`` for ``x.data > 0``."""
    if not x.data > 0:
        raise ValueError(f"log needs a positive input, got {x.data}")
    return Value(math.log(x.data))


def log_backward(x: Value, v: Value) -> None:
    """Chain rule through ``v = log(x)``: ``dy/dx += dv/dx * dy/dv = (1 / x) * v.grad``."""
    x.grad += (1.0 / x.data) * v.grad


def square_forward(v: Value) -> Value:
    """``w = v**2``."""
    return Value(v.data**2)


def square_backward(v: Value, w: Value) -> None:
    """Chain rule through ``w = v**2``: ``dy/dv += dw/dv * dy/dw = 2 v * w.grad``."""
    v.grad += 2.0 * v.data * w.grad


def log_square(x: float) -> dict:
    """Forward and backward pass through ``y = log(x)**2`` with intermediate ``v1 = log x``, ``v2 = v1**2``.

    Parameters
    ----------
    x : float > 0

    Returns
    -------
    dict with ``x, v1, v2`` (forward values, ``y = v2``) and ``grad_v2, grad_v1, grad_x``
    (``dy/dv2 = 1``, ``dy/dv1`` and ``dy/dx``; the last equals ``2 log(x) / x``).
    """
    x = Value(float(x))
    v1 = log_forward(x)           # forward pass, keeping every intermediate value
    v2 = square_forward(v1)
    v2.grad = 1.0                 # seed: dy/dv2 = 1 because y = v2
    square_backward(v1, v2)       # backward pass, in reverse order
    log_backward(x, v1)
    return {"x": x.data, "v1": v1.data, "v2": v2.data,
            "grad_v2": v2.grad, "grad_v1": v1.grad, "grad_x": x.grad}


# --------------------------------------------------------------------------- autograd functions
class Multiply(torch.autograd.Function):
    """``z = a * b`` elementwise for two tensors of the same shape, with a hand-written backward."""

    @staticmethod
    def forward(ctx, a, b):
        _check_same_shape(a, b)
        ctx.save_for_backward(a, b)           # stash the inputs: backward needs them
        return a * b

    @staticmethod
    def backward(ctx, grad_z):                # grad_z = dL/dz, the upstream gradient
        a, b = ctx.saved_tensors
        grad_a = grad_z * b                   # dz/da * dL/dz
        grad_b = grad_z * a                   # dz/db * dL/dz
        return grad_a, grad_b


class LinearFunction(torch.autograd.Function):
    """``h = g W^T + b`` for a batch of row vectors ``g`` (the convention of ``nn.Linear``).

    Shapes: ``g (B, N)``, ``weight (M, N)``, ``bias (M,)`` or None, ``h (B, M)``.
    """

    @staticmethod
    def forward(ctx, g, weight, bias=None):
        _check_linear(g, weight, bias)
        ctx.save_for_backward(g, weight, bias)
        h = g @ weight.T                      # (B, N) @ (N, M) -> (B, M)
        if bias is not None:
            h = h + bias                      # the same bias for every row
        return h

    @staticmethod
    def backward(ctx, grad_h):                # grad_h = dL/dh, shape (B, M)
        g, weight, bias = ctx.saved_tensors
        grad_g = grad_h @ weight              # (B, M) @ (M, N) -> (B, N), like g
        grad_weight = grad_h.T @ g            # (M, B) @ (B, N) -> (M, N), like weight
        grad_bias = grad_h.sum(dim=0) if bias is not None else None   # (M,), like bias
        return grad_g, grad_weight, grad_bias


class ReLUFunction(torch.autograd.Function):
    """``g = max(f, 0)`` elementwise, with a hand-written backward (gradient 0 at ``f = 0``)."""

    @staticmethod
    def forward(ctx, f):
        ctx.save_for_backward(f)
        return f.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_g):
        (f,) = ctx.saved_tensors
        return grad_g * (f > 0).to(grad_g.dtype)   # dg/df is 1 where f > 0, else 0


def _check_same_shape(a, b) -> None:
    if a.shape != b.shape:
        raise ValueError(f"Multiply needs two tensors of the same shape, got {tuple(a.shape)} "
                         f"and {tuple(b.shape)}")


def _check_linear(g, weight, bias) -> None:
    if g.ndim != 2 or weight.ndim != 2:
        raise ValueError(f"expected g of shape (B, N) and weight of shape (M, N), got "
                         f"{tuple(g.shape)} and {tuple(weight.shape)}")
    if g.shape[1] != weight.shape[1]:
        raise ValueError(f"g has {g.shape[1]} features per row but weight expects "
                         f"{weight.shape[1]} (weight shape {tuple(weight.shape)} is (out, in))")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")


class Linear(nn.Linear):
    """``nn.Linear`` whose forward and backward run through :class:`LinearFunction`.

    Same constructor, same parameters and same random initialisation as ``nn.Linear``, so a
    network built from these layers starts from exactly the weights of its ``nn`` twin.
    Input ``(B, in_features)``, output ``(B, out_features)``.
    """

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        return LinearFunction.apply(g, self.weight, self.bias)


class ReLU(nn.Module):
    """``nn.ReLU`` through :class:`ReLUFunction` (any input shape)."""

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return ReLUFunction.apply(f)


# --------------------------------------------------------------------------- demos
_JS = "autodiff.js"

GD_CURVATURES = (1.0, 10.0)
"""Curvatures of the demo's loss landscape: a valley 10 times steeper across than along."""
GD_STEPS = 40
GD_RADIUS = 2.5       # start points lie on a circle of this radius around the minimum
GD_BOUND = 4.0        # a run is cut after its first iterate with |theta_i| > GD_BOUND
GD_LEVELS = (0.125, 0.5, 1.125, 2.0, 3.125, 4.5, 6.125)   # contour levels, semi-axes 0.5 ... 3.5
LOSS_FLOOR = 1e-12    # losses are plotted as log10(max(L, LOSS_FLOOR))


def ellipse_contours(curvatures, levels, n: int = 97, center=None):
    """Level sets ``L(theta - center) = c`` of the quadratic loss as one polyline, NaN between ellipses."""
    t = np.linspace(0.0, 2.0 * np.pi, n)
    xs, ys = [], []
    for c in levels:
        x = math.sqrt(2.0 * c / curvatures[0]) * np.cos(t)
        y = math.sqrt(2.0 * c / curvatures[1]) * np.sin(t)
        if center is not None:
            x, y = center[0] + x, center[1] + y
        xs += list(x) + [np.nan]
        ys += list(y) + [np.nan]
    return np.array(xs), np.array(ys)


def _gradient_descent_result(log10_lr: float, start_angle: float) -> dict:
    lam = np.array(GD_CURVATURES)
    lr = 10.0**log10_lr
    a = math.radians(start_angle)
    theta0 = np.array([GD_RADIUS * math.cos(a), GD_RADIUS * math.sin(a)])
    path = gradient_descent(lambda th: quadratic_gradient(th, lam), theta0, lr, GD_STEPS)
    outside = np.nonzero(np.max(np.abs(path), axis=1) > GD_BOUND)[0]
    if outside.size:                              # keep the first iterate outside, drop the rest
        path = path[: outside[0] + 1]
    loss = quadratic_loss(path, lam)
    rho = float(np.max(np.abs(1.0 - lr * lam)))
    cx, cy = ellipse_contours(lam, GD_LEVELS)
    return {
        "lr": lr, "rho": rho, "lr_max": critical_learning_rate(lam),
        "status": "diverges" if rho >= 1 else "converges",
        "path_x": path[:, 0], "path_y": path[:, 1],
        "steps": np.arange(len(path)), "log_loss": np.log10(np.maximum(loss, LOSS_FLOOR)),
        "n_steps": len(path) - 1, "final_log_loss": float(np.log10(max(loss[-1], LOSS_FLOOR))),
        "contour_x": cx, "contour_y": cy, "min_x": np.array([0.0]), "min_y": np.array([0.0]),
    }


@register("autodiff.gradient_descent")
def gradient_descent_demo() -> Demo:
    """Gradient descent on ``L = (θ₁² + 10 θ₂²) / 2``: learning rate and start point as sliders."""
    return Demo(
        "autodiff.gradient_descent", "Gradient descent on a narrow valley",
        [Slider("log10_lr", -3.0, 0.0, 0.05, -1.3, label="log₁₀ η", fmt=".2f"),
         Slider("start_angle", 0, 350, 10, 150, label="start (°)", fmt="d")],
        _gradient_descent_result,
        [Panel([Line("contour_x", "contour_y", color="#bbbbbb", width=1.0),
                Points("min_x", "min_y", color="#000000", size=6),
                Line("path_x", "path_y", color="#1f77b4", width=1.5),
                Points("path_x", "path_y", color="#1f77b4", size=4),
                Text("η = {lr:.4f}: {status}", 0.03, 0.93),
                Text("ρ = max|1 − ηλᵢ| = {rho:.3f}", 0.03, 0.84, size=10),
                Text("stable for η < 2/λ_max = {lr_max:.2f}", 0.03, 0.07, size=10,
                     color="#555555")],
               title="loss landscape and iterates", xlabel="θ₁", ylabel="θ₂",
               xlim=(-4.0, 4.0), ylim=(-2.5, 2.5)),
         Panel([Line("steps", "log_loss", color="#d62728", width=1.5),
                Points("steps", "log_loss", color="#d62728", size=3)],
               title="log₁₀ loss after {n_steps:d} steps: {final_log_loss:.1f}", xlabel="step",
               xlim=(0, GD_STEPS), ylim=(-12.0, 4.5))],
        alt="Left: elliptic contour lines of a quadratic loss that is ten times steeper along "
            "theta 2 than along theta 1, with the gradient-descent iterates drawn as a path of "
            "dots from the start point. Right: the base-10 logarithm of the loss at each of up "
            "to 40 steps. Small learning rates crawl, medium ones converge, and above 0.2 the "
            "path zigzags outwards and the loss grows.",
        js=JsTwin.from_package(_JS, "gradientDescentResult"))


GRAPH_NODES = (1.0, 5.0, 9.0)     # x positions of the nodes x, v1, v2 in the graph panel


def _log_square_graph_result(x: float) -> dict:
    r = log_square(x)
    xs = np.linspace(0.1, 5.0, 197)
    x0 = r["x"]
    tx = np.array([x0 - 1.0, x0 + 1.0])
    a, b, c = GRAPH_NODES
    nan = np.nan
    # arrowheads: forward ones point right near the end of each edge, backward ones point left
    fwd_x = [b - 0.8, b - 0.5, b - 0.8, nan, c - 0.8, c - 0.5, c - 0.8]
    fwd_y = [2.15, 2.0, 1.85, nan, 2.15, 2.0, 1.85]
    head_x = [a + 0.8, a + 0.5, a + 0.8, nan, b + 0.8, b + 0.5, b + 0.8]
    head_y = [1.35, 1.2, 1.05, nan, 1.35, 1.2, 1.05]
    return {
        **r, "dv1_dx": 1.0 / x0, "dv2_dv1": 2.0 * r["v1"], "closed_form": 2.0 * math.log(x0) / x0,
        "node_x": np.array(GRAPH_NODES), "node_y": np.array([2.0, 2.0, 2.0]),
        "edge_x": np.array([a, c]), "edge_y": np.array([2.0, 2.0]),
        "fwd_x": np.array(fwd_x), "fwd_y": np.array(fwd_y),
        "back_x": np.array([a, c]), "back_y": np.array([1.2, 1.2]),
        "head_x": np.array(head_x), "head_y": np.array(head_y),
        "curve_x": xs, "curve_y": np.log(xs) ** 2,
        "point_x": np.array([x0]), "point_y": np.array([r["v2"]]),
        "tangent_x": tx, "tangent_y": r["v2"] + r["grad_x"] * (tx - x0),
    }


@register("autodiff.log_square_graph")
def log_square_graph_demo() -> Demo:
    """The graph of ``y = log(x)^2``: forward values above the edges, backward gradients below."""
    a, b, c = GRAPH_NODES
    red, blue = "#d62728", "#1f77b4"
    return Demo(
        "autodiff.log_square_graph", "Forward and backward pass through y = log(x)²",
        [Slider("x", 0.1, 5.0, 0.05, 3.0, label="x", fmt=".2f")],
        _log_square_graph_result,
        [Panel([Line("edge_x", "edge_y", color="#444444", width=1.5),
                Line("fwd_x", "fwd_y", color="#444444", width=1.5),
                Line("back_x", "back_y", color=red, width=1.2, dash=True),
                Line("head_x", "head_y", color=red, width=1.2),
                Points("node_x", "node_y", color=blue, size=12),
                Text("x = {x:.2f}", a, 2.75, coords="data", anchor="middle", color=blue),
                Text("v₁ = {v1:.4f}", b, 2.75, coords="data", anchor="middle", color=blue),
                Text("y = v₂ = {v2:.4f}", c, 2.75, coords="data", anchor="middle", color=blue),
                Text("log", (a + b) / 2, 2.35, coords="data", anchor="middle"),
                Text("square", (b + c) / 2, 2.35, coords="data", anchor="middle"),
                Text("∂v₁/∂x = 1/x = {dv1_dx:.4f}", (a + b) / 2, 0.75, coords="data",
                     anchor="middle", size=10, color="#555555"),
                Text("∂v₂/∂v₁ = 2v₁ = {dv2_dv1:.4f}", (b + c) / 2, 0.75, coords="data",
                     anchor="middle", size=10, color="#555555"),
                Text("∂y/∂x = {grad_x:.4f}", a, 0.3, coords="data", anchor="middle", color=red),
                Text("∂y/∂v₁ = {grad_v1:.4f}", b, 0.3, coords="data", anchor="middle",
                     color=red),
                Text("∂y/∂v₂ = {grad_v2:.0f}", c, 0.3, coords="data", anchor="middle",
                     color=red)],
               title="forward values (blue, left to right), gradients (red, right to left)",
               xlim=(-0.2, 10.2), ylim=(0.0, 3.1), axes=False),
         Panel([Line("curve_x", "curve_y", color=blue),
                Line("tangent_x", "tangent_y", color=red, dash=True, width=1.5),
                Points("point_x", "point_y", color=red, size=6)],
               title="slope at x: ∂y/∂x = {grad_x:.4f},  2·log(x)/x = {closed_form:.4f}",
               xlabel="x", ylabel="y", xlim=(0.0, 5.1), ylim=(-0.5, 5.5))],
        alt="Top: the computation graph x, v1 = log x, v2 = v1 squared, drawn as three dots "
            "joined by arrows, with the forward value written above each node, the local "
            "derivative under each edge and the gradient of y with respect to each node in red "
            "below it. Bottom: the curve y = log(x) squared with its tangent at the chosen x, "
            "whose slope is the backpropagated gradient.",
        ncols=1, height=240,
        js=JsTwin.from_package(_JS, "logSquareGraphResult"))
