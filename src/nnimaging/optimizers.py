"""Optimizers written from their update rules (chapter 3): momentum, Adam, and their demo.

* :func:`momentum_step` and :func:`adam_step`: one update each, on NumPy arrays, in PyTorch's
  conventions (``torch.optim.SGD(momentum=...)`` and ``torch.optim.Adam``), so that the chapter can
  check them against PyTorch step for step;
* :func:`optimize`: runs gradient descent, momentum or Adam from a start point and returns the path;
* :func:`rosenbrock` and :func:`rosenbrock_gradient`: a curved, narrow valley, the classic test
  surface for optimizers (the straight valley is :func:`nnimaging.autodiff.quadratic_loss`);
* :func:`momentum_rate`: how fast momentum converges on a quadratic (its spectral radius).

The demo factory at the end draws the paths of the three optimizers on two loss surfaces; its
browser twin is in ``demo/optimizers.js``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import _checks
from .autodiff import ellipse_contours, quadratic_gradient, quadratic_loss
from .demo import Choice, Demo, JsTwin, Line, Panel, Points, Slider, Text, register

__all__ = [
    "momentum_step", "adam_step", "optimize", "METHODS", "rosenbrock", "rosenbrock_gradient",
    "momentum_rate", "optimizer_paths_demo",
]

METHODS = ("gd", "momentum", "adam")
"""Names :func:`optimize` accepts: plain gradient descent, heavy-ball momentum, Adam."""


# --------------------------------------------------------------------------- input checks
def _same_shape(theta: np.ndarray, **others) -> None:
    for name, value in others.items():
        if np.shape(value) != theta.shape:
            raise ValueError(f"{name} must have the shape of theta {theta.shape}, "
                             f"got {np.shape(value)}")


def _check_unit(name: str, value) -> None:
    if not (isinstance(value, (int, float, np.floating)) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


# --------------------------------------------------------------------------- the update rules
def momentum_step(theta, velocity, grad, lr: float, momentum: float):
    """One heavy-ball step, PyTorch's convention: ``v <- mu v + g``, ``theta <- theta - lr v``.

    ``theta``, ``velocity`` (zeros before the first step) and ``grad`` are arrays of one shape;
    returns the new ``(theta, velocity)``. ``momentum = 0`` is plain gradient descent.
    """
    theta = _checks.vector("theta", theta)
    _same_shape(theta, velocity=velocity, grad=grad)
    _checks.positive_number("lr", lr)
    _check_unit("momentum", momentum)
    velocity = momentum * np.asarray(velocity, dtype=float) + grad   # running sum of gradients
    return theta - lr * velocity, velocity


def adam_step(theta, m, v, grad, step: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """One Adam step (Kingma and Ba, 2015), as ``torch.optim.Adam`` computes it.

    ``m`` and ``v`` (zeros before the first step) are running means of the gradient and of its
    square; ``step`` counts from 1. Returns the new ``(theta, m, v)``.
    """
    theta = _checks.vector("theta", theta)
    _same_shape(theta, m=m, v=v, grad=grad)
    _checks.positive_number("lr", lr)
    beta1, beta2 = _check_betas(betas)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"step must be an integer >= 1 (the first step is 1), got {step!r}")
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"eps must be a number >= 0, got {eps!r}")
    m = beta1 * np.asarray(m, dtype=float) + (1 - beta1) * grad          # mean of g
    v = beta2 * np.asarray(v, dtype=float) + (1 - beta2) * grad * grad   # mean of g²
    m_hat = m / (1 - math.prod([beta1] * step))   # bias correction 1 - β₁ᵗ: m and v start at 0
    v_hat = v / (1 - math.prod([beta2] * step))   # (βᵗ as a product: the same float in JavaScript)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _check_betas(betas) -> tuple[float, float]:
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    _check_unit("beta1", beta1)
    _check_unit("beta2", beta2)
    return float(beta1), float(beta2)


def optimize(grad: Callable[[np.ndarray], np.ndarray], theta0, method: str, lr: float,
             steps: int, momentum: float = 0.9, betas=(0.9, 0.999), eps: float = 1e-8,
             bound: float | None = None) -> np.ndarray:
    """Run ``steps`` updates of ``method`` from ``theta0``; return the path.

    Parameters
    ----------
    grad : callable
        Maps a parameter vector ``(D,)`` to the gradient of the loss there, shape ``(D,)``.
    theta0 : (D,) array
        Start point.
    method : {"gd", "momentum", "adam"}
    lr : float > 0
        Learning rate.
    steps : int >= 0
    momentum : float in [0, 1)
        The ``mu`` of ``"momentum"`` (ignored by the others).
    betas, eps
        Adam's decay rates and the small number that keeps its division finite.
    bound : float, optional
        Stop after the first iterate with some ``|theta_i| > bound`` (a run that diverges).

    Returns
    -------
    (K + 1, D) float64 array
        The iterates, starting with ``theta0``; ``K = steps`` unless the run left ``bound``.
    """
    theta = _checks.vector("theta0", theta0).copy()
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if bound is not None and not bound > 0:
        raise ValueError(f"bound must be > 0 or None, got {bound!r}")
    _checks.positive_number("lr", lr)
    first = np.zeros_like(theta)                 # velocity, or Adam's m
    second = np.zeros_like(theta)                # Adam's v
    path = [theta.copy()]
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, int(steps) + 1):
            if bound is not None and np.max(np.abs(theta)) > bound:
                break
            g = np.asarray(grad(theta), dtype=float)
            if method == "adam":
                theta, first, second = adam_step(theta, first, second, g, k, lr, betas, eps)
            else:
                theta, first = momentum_step(theta, first, g, lr,
                                             momentum if method == "momentum" else 0.0)
            path.append(theta.copy())
    return np.array(path)


# --------------------------------------------------------------------------- test surfaces
def _last_axis_2(name: str, theta) -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    if theta.ndim == 0 or theta.shape[-1] != 2:
        raise ValueError(f"{name} must end in a dimension of size 2 (x, y), got shape {theta.shape}")
    return theta


def rosenbrock(theta, a: float = 1.0, b: float = 100.0) -> np.ndarray:
    """Rosenbrock's valley ``(a - x)² + b (y - x²)²``, minimum 0 at ``(a, a²)``.

    ``theta`` is one point ``(2,)`` or a stack ``(..., 2)``; returns an array of shape
    ``theta.shape[:-1]``.
    """
    theta = _last_axis_2("theta", theta)
    x, y = theta[..., 0], theta[..., 1]
    return (a - x) ** 2 + b * (y - x * x) ** 2


def rosenbrock_gradient(theta, a: float = 1.0, b: float = 100.0) -> np.ndarray:
    """Gradient of :func:`rosenbrock`, same shape as ``theta``."""
    theta = _last_axis_2("theta", theta)
    x, y = theta[..., 0], theta[..., 1]
    r = y - x * x
    return np.stack([-2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r], axis=-1)


def momentum_rate(lr: float, curvature: float, momentum: float) -> float:
    """Convergence factor per step of heavy-ball momentum on ``L = curvature * theta² / 2``.

    The pair ``(theta_k, theta_{k-1})`` is multiplied by the matrix
    ``[[1 + mu - lr*lam, -mu], [1, 0]]`` at every step; the result is the largest magnitude of its
    eigenvalues (the iterates shrink like ``rate**k``; ``rate >= 1`` means no convergence).
    """
    _checks.positive_number("lr", lr)
    _check_unit("momentum", momentum)
    if not (isinstance(curvature, (int, float, np.floating)) and curvature > 0):
        raise ValueError(f"curvature must be a number > 0, got {curvature!r}")
    matrix = np.array([[1.0 + momentum - lr * curvature, -momentum], [1.0, 0.0]])
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


# --------------------------------------------------------------------------- demo
_JS = "optimizers.js"

SURFACES = ("narrow valley", "Rosenbrock")
METHOD_LABELS = {"gradient descent": "gd", "momentum": "momentum", "Adam": "adam"}
DEMO_STEPS = 200
DEMO_START = (-1.5, 2.5)              # both surfaces: the same start ...
VALLEY_CENTER = (1.0, 1.0)            # ... and the same minimum, at (1, 1)
VALLEY_CURVATURES = (1.0, 10.0)       # the valley of the gradient-descent demo, moved
VALLEY_LEVELS = (0.1, 0.4, 1.0, 2.0, 4.0, 7.0, 11.0, 16.0)
ROSENBROCK_B = 10.0                   # a gentler valley than the classic b = 100
ROSENBROCK_LEVELS = (0.05, 0.3, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0)
DEMO_BOUND = 4.0                      # a run stops after its first iterate with |theta_i| > 4
LOSS_FLOOR, LOSS_CEILING = 1e-12, 1e12  # losses are drawn as log10 of L clipped to these
ADAM_BETA2, ADAM_EPS = 0.999, 1e-8


def _surface(surface: str):
    """Loss and gradient of one demo surface, both minimal (0) at (1, 1)."""
    if surface == "Rosenbrock":
        return (lambda th: rosenbrock(th, 1.0, ROSENBROCK_B),
                lambda th: rosenbrock_gradient(th, 1.0, ROSENBROCK_B))
    lam, center = np.array(VALLEY_CURVATURES), np.array(VALLEY_CENTER)
    return (lambda th: quadratic_loss(th - center, lam),
            lambda th: quadratic_gradient(th - center, lam))


def _contours(surface: str, n: int = 73):
    """Level sets ``L = c`` as one polyline, NaN between curves (closed forms, no contouring)."""
    t = np.linspace(0.0, 2.0 * np.pi, n)
    xs, ys = [], []
    if surface == "Rosenbrock":       # x = 1 - √c cos t, then (y - x²)² = c sin²t / b
        for c in ROSENBROCK_LEVELS:
            x = 1.0 - math.sqrt(c) * np.cos(t)
            xs += list(x) + [np.nan]
            ys += list(x * x + math.sqrt(c / ROSENBROCK_B) * np.sin(t)) + [np.nan]
        return np.array(xs), np.array(ys)
    return ellipse_contours(VALLEY_CURVATURES, VALLEY_LEVELS, n, center=VALLEY_CENTER)  # around (1, 1)


def demo_learning_rate(log10_lr: float) -> float:
    """``10**log10_lr`` rounded to 3 significant digits: the same float in Python and JavaScript."""
    return float(f"{10.0 ** log10_lr:.3g}")


def _optimizer_paths_result(surface: str, optimizer: str, log10_lr: float, momentum: float) -> dict:
    loss, grad = _surface(surface)
    method = METHOD_LABELS[optimizer]
    lr = demo_learning_rate(log10_lr)
    path = optimize(grad, DEMO_START, method, lr, DEMO_STEPS, momentum=momentum,
                    betas=(momentum, ADAM_BETA2), eps=ADAM_EPS, bound=DEMO_BOUND)
    with np.errstate(over="ignore", invalid="ignore"):
        losses = loss(path)
    log_loss = np.log10(np.clip(np.nan_to_num(losses, nan=LOSS_CEILING), LOSS_FLOOR, LOSS_CEILING))
    left = bool(np.max(np.abs(path[-1])) > DEMO_BOUND) or not np.all(np.isfinite(path[-1]))
    cx, cy = _contours(surface)
    mu_name = {"gd": "μ (unused)", "momentum": "μ", "adam": "β₁"}[method]
    return {
        "lr": lr, "momentum": momentum, "mu_name": mu_name,
        "status": "diverged: left the plot" if left else f"after {DEMO_STEPS} steps",
        "path_x": path[:, 0], "path_y": path[:, 1],
        "steps": np.arange(len(path)), "log_loss": log_loss,
        "n_steps": len(path) - 1, "final_log_loss": float(log_loss[-1]),
        "contour_x": cx, "contour_y": cy, "min_x": np.array([1.0]), "min_y": np.array([1.0]),
    }


@register("optimizers.paths")
def optimizer_paths_demo() -> Demo:
    """Gradient descent, momentum and Adam on a narrow valley and on Rosenbrock's function."""
    return Demo(
        "Optimizers on two loss surfaces",
        [Choice("surface", SURFACES, "narrow valley", label="surface"),
         Choice("optimizer", tuple(METHOD_LABELS), "momentum", label="optimizer"),
         Slider("log10_lr", -4.0, 0.0, 0.05, -1.5, label="log₁₀ η", fmt=".2f"),
         Slider("momentum", 0.0, 0.99, 0.01, 0.8, label="μ (Adam: β₁)", fmt=".2f")],
        _optimizer_paths_result,
        [Panel([Line("contour_x", "contour_y", color="#bbbbbb", width=1.0),
                Points("min_x", "min_y", color="#000000", size=6),
                Line("path_x", "path_y", color="#1f77b4", width=1.5),
                Points("path_x", "path_y", color="#1f77b4", size=3),
                Text("η = {lr:.4f}, {mu_name} = {momentum:.2f}", 0.03, 0.93),
                Text("{status}", 0.03, 0.84, size=10)],
               title="loss surface and iterates", xlabel="θ₁", ylabel="θ₂",
               xlim=(-2.0, 3.0), ylim=(-1.0, 3.5)),
         Panel([Line("steps", "log_loss", color="#d62728", width=1.5)],
               title="log₁₀ loss: {final_log_loss:.2f} after {n_steps:d} steps", xlabel="step",
               xlim=(0, DEMO_STEPS), ylim=(-12.5, 3.5))],
        alt="Left: contour lines of a loss surface (a straight valley ten times steeper across than "
            "along, or Rosenbrock's curved banana-shaped valley), its minimum at (1, 1) marked with "
            "a black dot, and the path of 200 steps of the chosen optimizer from the start point "
            "(-1.5, 2.5). Right: the base-10 logarithm of the loss at every step. Gradient descent "
            "crawls along the valley floor, momentum gets there in fewer steps but overshoots and "
            "spirals when mu is large, and Adam takes steps of about the learning rate in every "
            "coordinate.",
        js=JsTwin.from_package(_JS, "optimizerPathsResult"))
