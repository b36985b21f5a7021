"""Architectures and applications (chapter 7).

Four small pieces of the chapter live here:

* figures of learned filters (:func:`plot_filters`);
* GoogLeNet's inception module (:class:`InceptionModule`), with or without the ``1 x 1``
  reductions in front of its ``3 x 3`` and ``5 x 5`` branches, and the settings of GoogLeNet's
  first one (:data:`INCEPTION_3A`);
* a deep fully connected stack with or without skip connections (:class:`DeepStack`), used to
  measure how much gradient reaches the first layer of a plain and of a residual network of the
  same depth and the same initial weights (:func:`plot_gradient_depth`, :func:`plot_fits`);
* relighting by linearity of light transport: a Lambertian sphere photographed under one light
  at a time (OLAT) gives the columns of a matrix ``A``; any mixture ``x`` of those lights renders
  as ``b = A x`` (:func:`sphere_normals`, :func:`sphere_albedo`, :func:`light_direction`,
  :func:`light_stage`, :func:`render_lambertian`, :func:`olat_matrix`, :func:`lobe_weights`,
  :func:`relighting_result` and the demo :func:`relighting_demo`, whose browser twin is
  ``demo/architectures.js``).

Conventions for the sphere: an orthographic camera looks along ``-z`` at a unit sphere that fills
the image; image columns run along ``+x`` (right), rows along ``-y`` (down), ``+z`` points at the
camera. A light direction is the unit vector pointing *from* the sphere *towards* the light. All
rendering is in float64 so that the browser twin agrees to 1e-6.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn

from ._checks import positive_int
from .demo import Bars, Demo, Image, JsTwin, Panel, Slider, Text, register

__all__ = [
    "plot_filters", "InceptionModule", "INCEPTION_3A", "DeepStack", "plot_gradient_depth", "plot_fits",
    "sphere_normals", "sphere_albedo", "light_direction", "light_stage", "render_lambertian",
    "olat_matrix", "lobe_weights", "relighting_result", "plot_olat", "relighting_demo",
    "STAGE_AZIMUTHS", "STAGE_ELEVATIONS", "LOBE_SHARPNESS", "DEMO_SIZE",
]

STAGE_AZIMUTHS = tuple(range(-180, 180, 30))
"""Azimuths (degrees) of the lights of :func:`light_stage`: 12 columns, every 30 degrees."""

STAGE_ELEVATIONS = (-30, 0, 30, 60)
"""Elevations (degrees) of the rings of lights of :func:`light_stage`; one more light on top."""

LOBE_SHARPNESS = 20.0
"""Default ``kappa`` of :func:`lobe_weights` (an area light about 13 degrees wide)."""


# ----------------------------------------------------------------------------- filters
def plot_filters(weight, ncols: int = 8, size: float = 0.9):
    """Show the kernels of a first convolutional layer, one panel each.

    Parameters
    ----------
    weight : (C_out, 1, k, k) tensor or array
        The layer's weights (one input channel). Each kernel gets its own symmetric grey
        scale (mid grey = 0, white = most positive, black = most negative).
    ncols : int
        Panels per row.
    size : float
        Side of one panel in inches.
    """
    import matplotlib.pyplot as plt

    w = weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else np.asarray(weight)
    if w.ndim != 4 or w.shape[1] != 1:
        raise ValueError(f"weight must have shape (C_out, 1, k, k), got {w.shape}")
    n = w.shape[0]
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if i < n:
            scale = float(np.abs(w[i, 0]).max()) or 1.0
            ax.imshow(w[i, 0], cmap="gray", vmin=-scale, vmax=scale, interpolation="nearest")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- inception
INCEPTION_3A = dict(in_channels=192, c1=64, c3_reduce=96, c3=128, c5_reduce=16, c5=32, pool_proj=32)
"""GoogLeNet's module "inception (3a)" (Szegedy et al., 2015, Table 1): 192 channels in, 256 out,
on ``28 x 28`` feature maps."""


def _conv_relu(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2), nn.ReLU())


class InceptionModule(nn.Module):
    """GoogLeNet's inception module: four branches side by side, concatenated along channels.

    * ``1 x 1`` convolution to ``c1`` channels;
    * ``1 x 1`` reduction to ``c3_reduce`` channels, then ``3 x 3`` convolution to ``c3``;
    * ``1 x 1`` reduction to ``c5_reduce`` channels, then ``5 x 5`` convolution to ``c5``;
    * ``3 x 3`` max pooling (stride 1), then ``1 x 1`` projection to ``pool_proj`` channels.

    Every convolution is followed by a ReLU and padded so that all branches keep the input's
    height and width; the output has ``c1 + c3 + c5 + pool_proj`` channels. With
    ``reduce=False`` the ``3 x 3`` and ``5 x 5`` convolutions act on the input directly (the
    paper's "naive" module, here with the same pooling projection so that the output width is
    the same), which shows what the ``1 x 1`` reductions save.

    Parameters
    ----------
    in_channels, c1, c3_reduce, c3, c5_reduce, c5, pool_proj : int
        Channel counts, each >= 1 (see :data:`INCEPTION_3A` for GoogLeNet's first module).
    reduce : bool
        Keep the ``1 x 1`` reductions.

    Input ``(N, in_channels, H, W)``, output ``(N, c1 + c3 + c5 + pool_proj, H, W)``.
    """

    def __init__(self, in_channels: int, c1: int, c3_reduce: int, c3: int, c5_reduce: int,
                 c5: int, pool_proj: int, reduce: bool = True):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("c1", c1), ("c3_reduce", c3_reduce),
                            ("c3", c3), ("c5_reduce", c5_reduce), ("c5", c5),
                            ("pool_proj", pool_proj)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.branch1 = _conv_relu(in_channels, c1, 1)
        if reduce:
            self.branch3 = nn.Sequential(_conv_relu(in_channels, c3_reduce, 1), _conv_relu(c3_reduce, c3, 3))
            self.branch5 = nn.Sequential(_conv_relu(in_channels, c5_reduce, 1), _conv_relu(c5_reduce, c5, 5))
        else:
            self.branch3 = _conv_relu(in_channels, c3, 3)
            self.branch5 = _conv_relu(in_channels, c5, 5)
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                         _conv_relu(in_channels, pool_proj, 1))
        self.out_channels = c1 + c3 + c5 + pool_proj

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch3(x), self.branch5(x), self.branch_pool(x)], dim=1)


# ----------------------------------------------------------------------------- deep stacks
class DeepStack(nn.Module):
    """A deep, narrow fully connected network, plain or residual, for depth experiments.

    Both variants own exactly the same layers: ``input`` (``in_features -> width``), ``depth``
    hidden ``Linear(width, width)`` layers and ``output`` (``width -> out_features``), so two
    stacks built after the same ``torch.manual_seed`` hold identical weights and differ only in
    how the hidden layers are wired:

    * plain: ``h <- relu(L_i h)`` for every hidden layer;
    * residual: the hidden layers are taken in pairs ``(L_a, L_b)`` and
      ``h <- h + L_b(relu(L_a(relu(h))))`` (a skip connection around every pair).

    No normalization layers; PyTorch's default initialization.

    Parameters
    ----------
    depth : int
        Number of hidden layers, >= 1 (even for ``residual=True``).
    width : int
        Units per hidden layer, >= 1.
    residual : bool
        Add the skip connections.
    in_features, out_features : int
        Sizes of input and output.

    Input ``(N, in_features)`` float32, output ``(N, out_features)``.
    """

    def __init__(self, depth: int, width: int, residual: bool, in_features: int = 1,
                 out_features: int = 1):
        super().__init__()
        for name, value in (("depth", depth), ("width", width), ("in_features", in_features),
                            ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if residual and depth % 2:
            raise ValueError(f"a residual stack pairs its hidden layers: depth must be even, "
                             f"got {depth}")
        self.residual = bool(residual)
        self.input = nn.Linear(in_features, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.output = nn.Linear(width, out_features)

    def forward(self, x):
        h = self.input(x)
        if self.residual:
            for a, b in zip(self.hidden[0::2], self.hidden[1::2]):
                h = h + b(torch.relu(a(torch.relu(h))))
        else:
            for layer in self.hidden:
                h = torch.relu(layer(h))
        return self.output(h)


def plot_gradient_depth(depths: Sequence[int], plain: Sequence[float],
                        residual: Sequence[float]):
    """Log-scale plot of the gradient norm at the first layer against depth, both variants."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.semilogy(depths, plain, "o-", label="plain")
    ax.semilogy(depths, residual, "s-", label="residual")
    ax.set_xlabel("hidden layers")
    ax.set_ylabel("gradient norm at the first layer")
    ax.legend()
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_fits(x, target, fits: dict, losses: dict):
    """Left: the target curve and each model's fit; right: training loss curves (log scale)."""
    import matplotlib.pyplot as plt

    x = np.asarray(x).ravel()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.2))
    ax1.plot(x, np.asarray(target).ravel(), color="black", lw=3, alpha=0.3, label="target")
    for name, fit in fits.items():
        ax1.plot(x, np.asarray(fit).ravel(), label=name)
    ax1.set_xlabel("input")
    ax1.legend(fontsize=8)
    for name, curve in losses.items():
        ax2.semilogy(np.arange(1, len(curve) + 1), curve, label=name)
    ax2.set_xlabel("training step")
    ax2.set_ylabel("mean squared error")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- relighting
def sphere_normals(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Surface normals of a unit sphere that fills a ``size x size`` image.

    Pixel ``(i, j)`` has centre ``u = 2 (j + 0.5) / size - 1`` (right), ``v = 1 - 2 (i + 0.5) /
    size`` (up); inside the disc ``u^2 + v^2 <= 1`` the normal is ``(u, v, sqrt(1 - u^2 -
    v^2))``.

    Returns
    -------
    normals : (size, size, 3) float64 array
        Unit vectors inside the disc, zeros outside.
    mask : (size, size) bool array
        True inside the disc.
    """
    size = positive_int("size", size, 2)
    c = (np.arange(size) + 0.5) * (2.0 / size) - 1.0
    u = np.broadcast_to(c[None, :], (size, size))
    v = np.broadcast_to(-c[:, None], (size, size))
    r2 = u * u + v * v
    mask = r2 <= 1.0
    z = np.sqrt(np.clip(1.0 - r2, 0.0, None))
    normals = np.stack([u, v, z], axis=-1) * mask[..., None]
    return normals, mask


def sphere_albedo(normals: np.ndarray, frequency: int = 4) -> np.ndarray:
    """A smooth pattern painted on the sphere: ``0.6 + 0.3 cos(f lon) cos(f lat)``.

    ``lon = atan2(n_x, n_z)`` and ``lat = asin(n_y)`` are longitude and latitude of the surface
    point, so the pattern is attached to the surface (it bends with it).

    Parameters
    ----------
    normals : (H, W, 3) float array
        From :func:`sphere_normals`.
    frequency : int
        Pattern periods per radian-scaled turn, >= 0.

    Returns
    -------
    (H, W) float64 array in [0.3, 0.9]
    """
    normals = np.asarray(normals, dtype=np.float64)
    if normals.ndim != 3 or normals.shape[-1] != 3:
        raise ValueError(f"normals must have shape (H, W, 3), got {normals.shape}")
    lon = np.arctan2(normals[..., 0], normals[..., 2])
    lat = np.arcsin(np.clip(normals[..., 1], -1.0, 1.0))
    return 0.6 + 0.3 * np.cos(frequency * lon) * np.cos(frequency * lat)


def light_direction(azimuth, elevation) -> np.ndarray:
    """Unit vectors towards lights at ``azimuth``, ``elevation`` (degrees).

    ``(cos(el) sin(az), sin(el), cos(el) cos(az))``: azimuth 0 and elevation 0 is the camera's
    direction (+z), azimuth 90 is to the right (+x), elevation 90 straight above (+y).

    Parameters
    ----------
    azimuth, elevation : float or arrays of the same shape S
        Angles in degrees.

    Returns
    -------
    (*S, 3) float64 array of unit vectors
    """
    az = np.radians(np.asarray(azimuth, dtype=np.float64))
    el = np.radians(np.asarray(elevation, dtype=np.float64))
    if az.shape != el.shape:
        raise ValueError(f"azimuth and elevation must have the same shape, got {az.shape} and "
                         f"{el.shape}")
    return np.stack([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)], axis=-1)


def light_stage(azimuths: Sequence[float] = STAGE_AZIMUTHS,
                elevations: Sequence[float] = STAGE_ELEVATIONS) -> np.ndarray:
    """Directions of a light stage: rings of lights at each elevation, plus one on top.

    Returns
    -------
    (len(elevations) * len(azimuths) + 1, 3) float64 array
        Ring by ring (elevation outer, azimuth inner), then ``(0, 1, 0)``.
    """
    az, el = np.meshgrid(np.asarray(azimuths, float), np.asarray(elevations, float))
    ring = light_direction(az.ravel(), el.ravel())
    return np.concatenate([ring, [[0.0, 1.0, 0.0]]], axis=0)


def render_lambertian(normals, albedo, directions, intensities=None) -> np.ndarray:
    """Image of a Lambertian surface under distant lights.

    ``b[p] = albedo[p] * sum_k intensities[k] * max(0, n[p] . l_k)``, zero where ``normals`` is
    zero (outside the object). No shadows cast by other parts (a convex object has none).

    Parameters
    ----------
    normals : (H, W, 3) float array
    albedo : (H, W) float array, >= 0
    directions : (3,) or (K, 3) float array
        Unit vectors towards the lights.
    intensities : (K,) float array, optional
        Light intensities (default: all ones).

    Returns
    -------
    (H, W) float64 array
    """
    normals = np.asarray(normals, dtype=np.float64)
    albedo = np.asarray(albedo, dtype=np.float64)
    directions = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if normals.ndim != 3 or normals.shape[-1] != 3:
        raise ValueError(f"normals must have shape (H, W, 3), got {normals.shape}")
    if albedo.shape != normals.shape[:2]:
        raise ValueError(f"albedo must have shape {normals.shape[:2]}, got {albedo.shape}")
    if directions.ndim != 2 or directions.shape[1] != 3:
        raise ValueError(f"directions must have shape (3,) or (K, 3), got {directions.shape}")
    k = directions.shape[0]
    weights = np.ones(k) if intensities is None else np.asarray(intensities, dtype=np.float64)
    if weights.shape != (k,):
        raise ValueError(f"intensities must have shape ({k},), got {weights.shape}")
    shading = np.clip(normals @ directions.T, 0.0, None)  # (H, W, K)
    return albedo * (shading @ weights)


def olat_matrix(normals, albedo, directions) -> np.ndarray:
    """The light-transport matrix: column ``k`` is the image lit by light ``k`` alone (OLAT).

    Returns
    -------
    (H * W, K) float64 array
        ``A[:, k] = render_lambertian(normals, albedo, directions[k]).ravel()``.
    """
    directions = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    cols = [render_lambertian(normals, albedo, d).ravel() for d in directions]
    return np.stack(cols, axis=1)


def lobe_weights(directions, target, kappa: float = LOBE_SHARPNESS) -> np.ndarray:
    """Weights of the basis lights that approximate one light from direction ``target``.

    ``x_k = exp(kappa (l_k . t - 1)) / sum_j exp(kappa (l_j . t - 1))``: a smooth lobe around
    ``t`` (a small area light), normalized to total intensity one.

    Parameters
    ----------
    directions : (K, 3) float array
        Basis light directions (unit vectors).
    target : (3,) float array
        Unit vector towards the desired light.
    kappa : float
        Sharpness, > 0; larger is closer to nearest-neighbour.

    Returns
    -------
    (K,) float64 array, non-negative, summing to one
    """
    directions = np.asarray(directions, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if directions.ndim != 2 or directions.shape[1] != 3:
        raise ValueError(f"directions must have shape (K, 3), got {directions.shape}")
    if target.shape != (3,):
        raise ValueError(f"target must have shape (3,), got {target.shape}")
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0, got {kappa!r}")
    w = np.exp(kappa * (directions @ target - 1.0))
    return w / w.sum()


def relighting_result(azimuth: float, elevation: float, size: int = 48,
                      kappa: float = LOBE_SHARPNESS) -> dict:
    """Everything the relighting demo shows for one light position.

    Returns
    -------
    dict
        ``relit`` (size, size): ``b = A x`` with ``x = lobe_weights(stage, l)``;
        ``direct`` (size, size): the sphere rendered directly under a point light ``l``;
        ``k`` (K,) light indices and ``weights`` (K,) the vector ``x``;
        ``error``: mean absolute difference of the two images inside the sphere.
    """
    normals, mask = sphere_normals(size)
    albedo = sphere_albedo(normals)
    stage = light_stage()
    A = olat_matrix(normals, albedo, stage)
    target = light_direction(azimuth, elevation)
    x = lobe_weights(stage, target, kappa)
    relit = (A @ x).reshape(size, size)
    direct = render_lambertian(normals, albedo, target)
    error = float(np.abs(relit - direct)[mask].mean())
    return {"relit": relit, "direct": direct, "k": np.arange(len(x), dtype=float),
            "weights": x, "error": error}


def plot_olat(A, size: int, directions, indices: Sequence[int], size_in: float = 1.3):
    """A row of OLAT images (columns of ``A``) titled with their light's azimuth/elevation."""
    import matplotlib.pyplot as plt

    directions = np.asarray(directions, dtype=np.float64)
    fig, axes = plt.subplots(1, len(indices), figsize=(size_in * len(indices), size_in + 0.35),
                             squeeze=False)
    for ax, k in zip(axes[0], indices):
        d = directions[k]
        az = math.degrees(math.atan2(d[0], d[2]))
        el = math.degrees(math.asin(max(-1.0, min(1.0, d[1]))))
        ax.imshow(A[:, k].reshape(size, size), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_title(f"az {az:.0f}°, el {el:.0f}°", fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


DEMO_SIZE = 48
"""Image side of :func:`relighting_demo` (the browser twin uses the same constant)."""


@register("architectures.relighting")
def relighting_demo() -> Demo:
    """Move one light around a sphere; the image is relit from 49 OLAT images as ``b = A x``.

    The browser twin (``relightingResult`` in ``demo/architectures.js``) repeats
    :func:`relighting_result` at ``size = DEMO_SIZE``.
    """
    size = DEMO_SIZE
    n_lights = len(light_stage())
    return Demo(
        name="architectures.relighting",
        title="Relighting a sphere from one-light-at-a-time images",
        controls=[Slider("azimuth", -180, 180, 5, 45, label="azimuth (°)", fmt="d"),
                  Slider("elevation", -30, 90, 5, 30, label="elevation (°)", fmt="d")],
        compute=lambda azimuth, elevation: relighting_result(azimuth, elevation, size),
        panels=[Panel([Image("relit", 0.0, 1.0)], title="b = A x (basis lights)", axes=False),
                Panel([Image("direct", 0.0, 1.0)], title="point light, rendered directly",
                      axes=False),
                Panel([Bars("k", "weights"),
                       Text("mean |difference| {error:.3f}", 0.03, 0.92)],
                      title="light weights x", xlabel="basis light k", ylabel="x_k",
                      xlim=(-1.0, float(n_lights)), ylim=(0.0, 1.0))],
        alt=("Three panels. Left: a shaded sphere with a painted pattern, lit as a weighted sum "
             "of images each taken under one basis light; middle: the same sphere rendered "
             "directly under a single light from the chosen azimuth and elevation; right: bar "
             "chart of the weights of the basis lights, which concentrate on the few lights "
             "nearest the chosen direction. Sliders move the light; both spheres brighten on "
             "the side facing it."),
        js=JsTwin.from_package("architectures.js", "relightingResult"),
        args={},
    )
