"""Looking inside a trained network: the inputs its units prefer, and slices of its loss landscape.

* :func:`activation_maximization`: gradient *ascent* on the input image, from a grey start, to
  find an image that excites one unit (a class score, or a channel of a feature map), with an L2
  penalty and a small blur at every step so that the image stays smooth (Olah et al., 2017 survey
  such regularizers);
* :func:`interpolation_losses`: the loss along the straight line between two sets of weights,
  ``(1 - alpha) theta_0 + alpha theta_1`` (Goodfellow, Vinyals and Saxe, 2015);
* :func:`filter_normalized_direction` and :func:`plane_losses`: the loss on a 2-D slice through the
  trained weights along two random directions, each rescaled filter by filter to the norm of the
  weights' own filters (Li et al., 2018), so that slices of different networks are comparable;
* :func:`plot_landscape` draws both.

Parameters are always restored after a landscape is evaluated.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import UsageError, non_negative_number, positive_int, positive_number

__all__ = [
    "activation_maximization", "interpolation_losses", "filter_normalized_direction",
    "plane_losses", "plot_landscape",
]


def _gaussian_kernel(sigma: float, dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def activation_maximization(model: nn.Module, unit: Callable[[torch.Tensor], torch.Tensor],
                            shape: Sequence[int], steps: int = 200, lr: float = 0.05,
                            l2: float = 1e-3, blur: float = 0.5, start=0.5,
                            clamp: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """An input that makes one unit of ``model`` large, found by gradient ascent.

    The image is written ``x = low + (high - low) * sigmoid(z)`` (``x = z`` with ``clamp=None``), so
    that it stays inside ``clamp`` without being cut off: clipped pixels would be exactly equal,
    and ties in max pooling would then be broken by rounding, differently on different processors.
    Starting from ``x = start``, repeat ``steps`` times: compute
    ``J(x) = unit(model(x)) - l2 * ||x||^2``, step ``z <- z + lr * grad_z J / max|grad_z J|`` (a step
    of fixed size in the max norm, so that ``lr`` does not depend on the unit's scale), then blur
    ``z`` with a Gaussian of standard deviation ``blur`` pixels (0 for none).

    Parameters
    ----------
    model : nn.Module
        Its parameters are not changed (their gradients are not kept).
    unit : callable
        Maps the model's output for a batch of one to a scalar tensor, e.g.
        ``lambda out: out[0, 3]`` for the score of class 3.
    shape : sequence of int
        Shape of the input, batch of one included, e.g. ``(1, 1, 28, 28)``.
    steps, lr, l2, blur
        See above; ``steps >= 1``, ``lr > 0``, ``l2 >= 0``, ``blur >= 0``.
    start : float or tensor of ``shape``
        The first image, strictly inside ``clamp``. A slightly uneven start (a seeded pattern)
        avoids the exact ties of a constant one.
    clamp : (float, float) or None
        Range of valid input values.

    Returns
    -------
    tensor of ``shape``, in the model's dtype.
    """
    shape = tuple(positive_int("shape", s) for s in shape)
    if len(shape) != 4 or shape[0] != 1:
        raise UsageError(f"shape must be (1, C, H, W), got {shape}")
    steps = positive_int("steps", steps)
    lr = positive_number("lr", lr)
    l2 = non_negative_number("l2", l2)
    blur = non_negative_number("blur", blur)
    dtype = next(model.parameters()).dtype
    kernel = _gaussian_kernel(blur, dtype) if blur > 0 else None
    x0 = torch.as_tensor(start, dtype=dtype).expand(shape).clone()
    if clamp is not None:
        low, high = float(clamp[0]), float(clamp[1])
        u = (x0 - low) / (high - low)
        if not torch.all((u > 0) & (u < 1)):
            raise UsageError(f"start must lie strictly inside clamp = {clamp}")
        z = torch.log(u / (1 - u))
        image = lambda z: low + (high - low) * torch.sigmoid(z)
    else:
        z = x0
        image = lambda z: z
    was_training = model.training
    model.eval()
    requires = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            z.requires_grad_(True)
            x = image(z)
            objective = unit(model(x)) - l2 * (x ** 2).sum()
            if objective.ndim != 0:
                raise UsageError(f"unit must return a scalar, got shape {tuple(objective.shape)}")
            (grad,) = torch.autograd.grad(objective, z)
            with torch.no_grad():
                z = z + lr * grad / grad.abs().max().clamp_min(1e-12)
                if kernel is not None:
                    c, r = shape[1], len(kernel) // 2
                    kx = kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
                    z = F.conv2d(F.pad(z, (r, r, 0, 0), mode="replicate"), kx, groups=c)
                    z = F.conv2d(F.pad(z, (0, 0, r, r), mode="replicate"), kx.transpose(2, 3), groups=c)
    finally:
        for p, r in zip(model.parameters(), requires):
            p.requires_grad_(r)
        model.train(was_training)
    with torch.no_grad():
        return image(z).detach()


def _check_state(model: nn.Module, state: dict, name: str) -> None:
    own = dict(model.named_parameters())
    if not isinstance(state, dict) or set(state) < set(own) or \
            any(state[k].shape != v.shape for k, v in own.items()):
        raise UsageError(f"{name} must map every parameter name of the model to a tensor of its "
                         f"shape ({len(own)} parameters), got {type(state).__name__}")


def _evaluate_at(model: nn.Module, points, loss_fn) -> list[float]:
    """Loss at each point (a dict name -> tensor of parameters); the parameters are restored."""
    params = dict(model.named_parameters())
    saved = {k: p.detach().clone() for k, p in params.items()}
    out = []
    try:
        with torch.no_grad():
            for point in points:
                for k, p in params.items():
                    p.copy_(point[k])
                out.append(float(loss_fn(model)))
    finally:
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(saved[k])
    return out


def interpolation_losses(model: nn.Module, start: dict, end: dict, alphas: Sequence[float],
                         loss_fn: Callable[[nn.Module], float]) -> np.ndarray:
    """The loss along the line ``theta(alpha) = (1 - alpha) start + alpha end``.

    ``alpha = 0`` gives ``start`` (e.g. the initial weights), ``alpha = 1`` gives ``end`` (the trained
    ones); values outside [0, 1] extrapolate.

    Parameters
    ----------
    model : nn.Module
        Its parameters are set to each point in turn and restored afterwards.
    start, end : dict
        Parameter name -> tensor (``dict(model.named_parameters())`` or a state dict).
    alphas : sequence of float
    loss_fn : callable
        ``loss_fn(model)`` returns the loss (a number or a scalar tensor).

    Returns
    -------
    (len(alphas),) float64 array
    """
    _check_state(model, start, "start")
    _check_state(model, end, "end")
    alphas = [float(a) for a in alphas]
    names = [k for k, _ in model.named_parameters()]
    points = ({k: (1 - a) * start[k] + a * end[k] for k in names} for a in alphas)
    return np.array(_evaluate_at(model, points, loss_fn))


def filter_normalized_direction(model: nn.Module, generator: torch.Generator) -> dict:
    """A random direction in weight space, scaled filter by filter (Li et al., 2018).

    Draw ``d`` from a standard normal with the shape of every parameter. For a weight with two or
    more dimensions, each *filter* (one slice along the first axis: an output channel of a
    convolution, a row of a linear layer) is rescaled to the Frobenius norm of the same filter of
    the model's weights, ``d_i <- d_i ||theta_i|| / ||d_i||``. One-dimensional parameters (biases,
    normalization) get direction zero, as in Li et al.'s experiments. Moving along ``d`` then
    changes every filter in proportion to its own size, which the network's scale invariances
    (a ReLU layer scaled up and the next scaled down) would otherwise hide.

    Returns
    -------
    dict
        Parameter name -> tensor of its shape and dtype.
    """
    out = {}
    for name, p in model.named_parameters():
        if p.ndim < 2:
            out[name] = torch.zeros_like(p)
            continue
        d = torch.randn(p.shape, generator=generator, dtype=torch.float64).to(p.dtype)
        d_norm = d.flatten(1).norm(dim=1).clamp_min(1e-12)
        p_norm = p.detach().flatten(1).norm(dim=1)
        out[name] = d * (p_norm / d_norm).view(-1, *([1] * (p.ndim - 1)))
    return out


def plane_losses(model: nn.Module, center: dict, d1: dict, d2: dict, alphas: Sequence[float],
                 betas: Sequence[float], loss_fn: Callable[[nn.Module], float]) -> np.ndarray:
    """The loss on the plane ``center + alpha d1 + beta d2``.

    Returns
    -------
    (len(betas), len(alphas)) float64 array
        Row ``i``, column ``j``: the loss at ``alpha = alphas[j]``, ``beta = betas[i]``.
    """
    for state, name in ((center, "center"), (d1, "d1"), (d2, "d2")):
        _check_state(model, state, name)
    alphas, betas = [float(a) for a in alphas], [float(b) for b in betas]
    names = [k for k, _ in model.named_parameters()]
    points = ({k: center[k] + a * d1[k] + b * d2[k] for k in names} for b in betas for a in alphas)
    return np.array(_evaluate_at(model, points, loss_fn)).reshape(len(betas), len(alphas))


def plot_landscape(alphas, line, grid_alphas, grid_betas, plane, size: float = 3.3):
    """The 1-D interpolation (left) and the 2-D slice as contours of the log loss (right)."""
    import matplotlib.pyplot as plt

    # rounded, so that last-bit differences between processors do not move the contour lines
    line, plane = np.round(np.asarray(line, float), 6), np.round(np.asarray(plane, float), 6)
    fig, (a, b) = plt.subplots(1, 2, figsize=(2 * size + 0.8, size))
    a.plot(alphas, line, color="#1f77b4")
    a.axvline(0, color="#999999", lw=0.8, ls=":")
    a.axvline(1, color="#999999", lw=0.8, ls=":")
    a.set_xlabel("α  (0: initial weights, 1: trained)")
    a.set_ylabel("training loss")
    a.set_yscale("log")
    cs = b.contour(grid_alphas, grid_betas, np.log10(plane), levels=12, cmap="viridis")
    b.clabel(cs, fontsize=6, fmt="%.1f")
    b.plot([0], [0], "o", color="#d62728", ms=4)
    b.set_xlabel("direction 1")
    b.set_ylabel("direction 2")
    b.set_title("log10 loss around the trained weights", fontsize=9)
    b.set_aspect("equal")
    fig.tight_layout()
    return fig
