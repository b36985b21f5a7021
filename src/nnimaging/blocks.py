"""Normalization layers and residual blocks (chapter 4).

* normalization from the formulas: :func:`batch_norm` (with its running estimates, as
  ``torch.nn.BatchNorm2d`` computes it), :func:`layer_norm`, :func:`instance_norm` and
  :func:`group_norm`, all built on :func:`normalize` over the axes of :data:`NORM_AXES`;
  :func:`statistic_groups` and :func:`plot_statistic_groups` show which values share a mean;
* residual blocks: :class:`ResidualBlock`, ``relu(x + F(x))`` with an identity or a projection
  shortcut (He et al., 2016), and :class:`PreActResidualBlock`, ``x + F(x)`` with the
  activations inside ``F`` (He et al., 2016, "Identity mappings"); :func:`jacobian` of a block, drawn by :func:`plot_jacobians`;
* the batch-norm training comparison: :func:`small_cnn` (the same network with or without
  batch norm), :func:`training_curve` and :func:`steps_to_reach`, drawn by
  :func:`plot_training_curves`.

Activations are ``(N, C, H, W)``; the NumPy functions accept arrays or tensors and compute
in float64.
"""

from __future__ import annotations


import numpy as np
import torch
from torch import nn

from ._checks import positive_int, positive_number
from .conv import _array

__all__ = ["batch_norm", "normalize", "layer_norm", "instance_norm", "group_norm", "NORM_AXES",
           "statistic_groups", "plot_statistic_groups", "ResidualBlock", "PreActResidualBlock",
           "jacobian", "plot_jacobians", "small_cnn", "training_curve", "steps_to_reach", "plot_training_curves"]

NORM_AXES = {"batch": (0, 2, 3), "layer": (1, 2, 3), "instance": (2, 3)}
"""The axes of an ``(N, C, H, W)`` tensor that each normalization averages over. Group norm
averages over ``(H, W)`` and the channels of one group (a part of axis 1), see
:func:`group_norm`."""

def batch_norm(x, gamma=None, beta=None, eps: float = 1e-5, running_mean=None,
               running_var=None, momentum: float = 0.1, training: bool = True):
    """Batch normalization of ``(N, C, H, W)`` activations, one mean and variance per channel.

    ``y = (x - mu) / sqrt(var + eps) * gamma + beta``. In training, ``mu`` and ``var`` are
    the mean and the (biased) variance of the batch over ``N, H, W``, and the running
    estimates move towards them: ``running = (1 - momentum) running + momentum batch``, with
    the unbiased batch variance (``n / (n - 1)`` times the biased one), as
    ``torch.nn.BatchNorm2d`` does. In evaluation, the running estimates are used instead, so
    one image gives the same output whatever else is in its batch.

    Parameters
    ----------
    x : (N, C, H, W) array
    gamma, beta : (C,) arrays, optional
        Scale and shift (default 1 and 0).
    eps : float
    running_mean, running_var : (C,) arrays, optional
        Default 0 and 1 (a fresh layer); required in spirit for ``training=False``.
    momentum : float in [0, 1]
    training : bool

    Returns
    -------
    y : (N, C, H, W) float64 array
    running_mean, running_var : (C,) float64 arrays
        Updated in training, unchanged in evaluation.
    """
    x = _array("x", x, (4,))
    c = x.shape[1]

    def per_channel(name, value, default):
        if value is None:
            return np.full(c, float(default))
        arr = _array(name, value, (1,))
        if arr.shape != (c,):
            raise ValueError(f"{name} must have shape ({c},) for {c} channels, got {arr.shape}")
        return arr

    gamma, beta = per_channel("gamma", gamma, 1.0), per_channel("beta", beta, 0.0)
    rmean, rvar = per_channel("running_mean", running_mean, 0.0), per_channel(
        "running_var", running_var, 1.0)
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if training:
        n = x.shape[0] * x.shape[2] * x.shape[3]
        if n < 2:
            raise ValueError("training-mode batch norm needs more than one value per channel, "
                             f"got x of shape {x.shape}")
        mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        rmean = (1 - momentum) * rmean + momentum * mu
        rvar = (1 - momentum) * rvar + momentum * var * n / (n - 1)
    else:
        mu, var = rmean, rvar
    y = (x - mu[:, None, None]) / np.sqrt(var[:, None, None] + eps)
    return y * gamma[:, None, None] + beta[:, None, None], rmean, rvar

# ----------------------------------------------------------------------------- other normalizations
def _param(name: str, value, shape: tuple[int, ...], default: float) -> np.ndarray:
    """A scale or shift of ``shape`` (default: all ``default``), as a float64 array."""
    if value is None:
        return np.full(shape, float(default))
    arr = _array(name, value, (len(shape),))
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def normalize(x, axes, eps: float = 1e-5) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)``, the mean and the (biased) variance taken over ``axes``.

    Parameters
    ----------
    x : (N, C, H, W) array
    axes : tuple of distinct ints in 0..3
        The axes averaged over; every other index has its own mean and variance
        (:data:`NORM_AXES` lists them for batch, layer and instance norm).
    eps : float > 0

    Returns
    -------
    (N, C, H, W) float64 array
    """
    x = _array("x", x, (4,))
    axes = tuple(axes)
    if not axes or len(set(axes)) != len(axes) or any(
            isinstance(a, bool) or not isinstance(a, (int, np.integer)) or not 0 <= a <= 3
            for a in axes):
        raise ValueError(f"axes must be distinct axes of an (N, C, H, W) array (0 to 3), got {axes!r}")
    eps = positive_number("eps", eps)
    mean, var = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def layer_norm(x, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """Layer normalization (Ba et al., 2016): one mean and variance per sample, over ``C, H, W``.

    As ``torch.nn.LayerNorm([C, H, W])``: the scale and shift have one entry per value of a
    sample, ``(C, H, W)``. A sample's output does not depend on the rest of the batch.

    Parameters
    ----------
    x : (N, C, H, W) array
    gamma, beta : (C, H, W) arrays, optional
        Scale and shift (default 1 and 0).
    eps : float > 0

    Returns
    -------
    (N, C, H, W) float64 array
    """
    x = _array("x", x, (4,))
    shape = x.shape[1:]
    gamma, beta = _param("gamma", gamma, shape, 1.0), _param("beta", beta, shape, 0.0)
    return normalize(x, NORM_AXES["layer"], eps) * gamma + beta


def instance_norm(x, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """Instance normalization (Ulyanov et al., 2016): one mean and variance per sample and channel.

    As ``torch.nn.InstanceNorm2d(C, affine=True)``: the statistics are taken over ``H, W`` of
    each channel of each sample; the scale and shift have one entry per channel.

    Parameters
    ----------
    x : (N, C, H, W) array
    gamma, beta : (C,) arrays, optional
        Scale and shift (default 1 and 0).
    eps : float > 0

    Returns
    -------
    (N, C, H, W) float64 array
    """
    x = _array("x", x, (4,))
    c = x.shape[1]
    gamma, beta = _param("gamma", gamma, (c,), 1.0), _param("beta", beta, (c,), 0.0)
    y = normalize(x, NORM_AXES["instance"], eps)
    return y * gamma[:, None, None] + beta[:, None, None]


def group_norm(x, groups: int, gamma=None, beta=None, eps: float = 1e-5) -> np.ndarray:
    """Group normalization (Wu and He, 2018): one mean and variance per sample and channel group.

    The ``C`` channels are split into ``groups`` consecutive groups of ``C / groups``; the
    statistics are taken over the channels of a group and ``H, W``, as
    ``torch.nn.GroupNorm(groups, C)`` computes them. ``groups = 1`` is layer norm with a
    per-channel scale, ``groups = C`` is instance norm.

    Parameters
    ----------
    x : (N, C, H, W) array
    groups : int, a divisor of C
    gamma, beta : (C,) arrays, optional
        Scale and shift (default 1 and 0).
    eps : float > 0

    Returns
    -------
    (N, C, H, W) float64 array
    """
    x = _array("x", x, (4,))
    n, c, h, w = x.shape
    groups = positive_int("groups", groups)
    if c % groups:
        raise ValueError(f"groups must divide the {c} channels, got {groups}")
    gamma, beta = _param("gamma", gamma, (c,), 1.0), _param("beta", beta, (c,), 0.0)
    grouped = x.reshape(n, groups, c // groups, h, w)
    mean = grouped.mean(axis=(2, 3, 4), keepdims=True)
    var = grouped.var(axis=(2, 3, 4), keepdims=True)
    y = ((grouped - mean) / np.sqrt(var + positive_number("eps", eps))).reshape(n, c, h, w)
    return y * gamma[:, None, None] + beta[:, None, None]


def statistic_groups(kind: str, n: int, c: int, groups: int | None = None) -> np.ndarray:
    """Which mean and variance each ``(sample, channel)`` slice of a batch is normalized with.

    Parameters
    ----------
    kind : {"batch", "layer", "instance", "group"}
    n, c : int
        Samples and channels.
    groups : int, a divisor of c
        Required for ``kind="group"``.

    Returns
    -------
    (n, c) int array
        Entry ``[i, j]`` numbers the statistic used for ``x[i, j, :, :]`` (0, 1, ...): equal
        numbers share one mean and variance.
    """
    n, c = positive_int("n", n), positive_int("c", c)
    sample, channel = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
    if kind == "batch":
        return channel
    if kind == "layer":
        return sample
    if kind == "instance":
        return sample * c + channel
    if kind == "group":
        if groups is None:
            raise ValueError("kind='group' needs groups")
        groups = positive_int("groups", groups)
        if c % groups:
            raise ValueError(f"groups must divide the {c} channels, got {groups}")
        return sample * groups + channel // (c // groups)
    raise ValueError(f"kind must be 'batch', 'layer', 'instance' or 'group', got {kind!r}")


def plot_statistic_groups(n: int = 4, c: int = 6, groups: int = 3):
    """Four ``n x c`` grids (samples by channels), one per normalization: equal colours share a
    mean and variance, which is also taken over all ``H x W`` pixels of those slices."""
    import matplotlib.pyplot as plt

    kinds = ("batch", "layer", "instance", "group")
    fig, axes = plt.subplots(1, 4, figsize=(10.0, 0.45 * n + 1.3))
    for ax, kind in zip(axes, kinds):
        ids = statistic_groups(kind, n, c, groups)
        ax.imshow(ids % 20, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
        for (i, j), v in np.ndenumerate(ids):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7)
        label = f", {groups} groups" if kind == "group" else ""
        ax.set_title(f"{kind} norm{label}\n{ids.max() + 1} statistics", fontsize=9)
        ax.set_xticks(range(c))
        ax.set_xticklabels([str(j + 1) for j in range(c)], fontsize=7)
        ax.set_yticks(range(n))
        ax.set_yticklabels([str(i + 1) for i in range(n)], fontsize=7)
        ax.set_xlabel("channel", fontsize=8)
        ax.grid(False)
    axes[0].set_ylabel("sample in the batch", fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- residual blocks
class ResidualBlock(nn.Module):
    """``relu(shortcut(x) + F(x))`` with ``F`` = conv, batch norm, ReLU, conv, batch norm.

    The convolutions have no bias (batch norm's shift replaces it) and padding
    ``kernel // 2``. When the block keeps the channels and the size, the shortcut is the
    identity; with the last batch norm's scale set to zero, ``F = 0`` and the block is the
    identity on non-negative inputs. When it changes the number of channels
    (``out_channels``) or the resolution (``stride`` of its first convolution), the shortcut
    is a projection: a 1x1 convolution with that stride, then batch norm (He et al., 2016,
    option B), so that both terms of the sum have the output's shape.

    Parameters
    ----------
    channels : int
        Input channels.
    kernel : int
        Odd kernel size.
    out_channels : int, optional
        Output channels (default ``channels``).
    stride : int
        Stride of the first convolution and of the projection.

    Input: ``(N, channels, H, W)``; output: ``(N, out_channels, ceil(H / stride),
    ceil(W / stride))`` float tensors. ``shortcut`` is ``None`` for the identity.
    """

    def __init__(self, channels: int, kernel: int = 3, out_channels: int | None = None,
                 stride: int = 1):
        super().__init__()
        channels, kernel = positive_int("channels", channels, 1), positive_int("kernel", kernel, 1)
        out = channels if out_channels is None else positive_int("out_channels", out_channels, 1)
        stride = positive_int("stride", stride, 1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd to keep the size, got {kernel}")
        pad = kernel // 2
        self.residual = nn.Sequential(
            nn.Conv2d(channels, out, kernel, stride=stride, padding=pad, bias=False),
            nn.BatchNorm2d(out), nn.ReLU(),
            nn.Conv2d(out, out, kernel, padding=pad, bias=False),
            nn.BatchNorm2d(out))
        if out != channels or stride != 1:
            self.shortcut = nn.Sequential(nn.Conv2d(channels, out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out))
        else:
            self.shortcut = None
        self.relu = nn.ReLU()

    def forward(self, x):
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.relu(skip + self.residual(x))


class PreActResidualBlock(nn.Module):
    """``x + F(x)`` with ``F`` = batch norm, ReLU, conv, batch norm, ReLU, conv (pre-activation).

    The activations sit inside the branch, so nothing follows the addition: the identity path
    is exact, and the Jacobian of the block is ``I + dF/dx`` at every input (He et al., 2016,
    "Identity mappings in deep residual networks").

    Parameters
    ----------
    channels : int
        Input and output channels.
    kernel : int
        Odd kernel size.

    Input and output: ``(N, channels, H, W)`` float tensors.
    """

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        channels, kernel = positive_int("channels", channels, 1), positive_int("kernel", kernel, 1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd to keep the size, got {kernel}")
        pad = kernel // 2
        self.residual = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel, padding=pad, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel, padding=pad, bias=False))

    def forward(self, x):
        return x + self.residual(x)


def jacobian(module, x) -> np.ndarray:
    """The Jacobian of ``module`` at ``x``, flattened: ``J[i, j] = d y_i / d x_j``.

    Parameters
    ----------
    module : torch.nn.Module with float64 parameters
        Put it in evaluation mode first if it has batch norm, so that each output depends on
        the input through fixed statistics.
    x : float64 tensor of any shape

    Returns
    -------
    (y.numel(), x.numel()) float64 array
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not torch.is_tensor(x) or x.dtype != torch.float64:
        raise TypeError("x must be a float64 tensor, got "
                        f"{x.dtype if torch.is_tensor(x) else type(x).__name__}")
    if any(p.dtype != torch.float64 for p in module.parameters()):
        raise TypeError("module must have float64 parameters (call module.double())")
    j = torch.autograd.functional.jacobian(module, x.detach())
    return j.reshape(-1, x.numel()).numpy()


def plot_jacobians(matrices, titles):
    """Jacobians side by side as images (red positive, blue negative, white zero).

    Parameters
    ----------
    matrices : sequence of (m, n) arrays
    titles : sequence of str, one per matrix
    """
    import matplotlib.pyplot as plt

    matrices = [np.asarray(m, dtype=float) for m in matrices]
    if len(titles) != len(matrices) or not matrices:
        raise ValueError(f"need one title per matrix, got {len(titles)} for {len(matrices)}")
    limit = max(float(np.abs(m).max()) for m in matrices) or 1.0
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.3 * len(matrices), 3.5), squeeze=False)
    for ax, m, title in zip(axes[0], matrices, titles):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("input value j", fontsize=8)
        ax.grid(False)
    axes[0][0].set_ylabel("output value i", fontsize=8)
    fig.colorbar(im, ax=list(axes[0]), fraction=0.03, pad=0.02, label="∂y_i / ∂x_j")
    return fig


# ----------------------------------------------------------------------------- does batch norm help?
def small_cnn(batch_norm: bool, channels: int = 8, depth: int = 4, classes: int = 10,
              seed: int = 0, init: str = "he") -> nn.Sequential:
    """A plain stack of 3x3 convolutions and ReLUs, with or without batch norm, then a classifier.

    ``depth`` times (conv 3x3, padding 1 [, batch norm], ReLU), global average pooling and a
    linear layer to ``classes`` scores; one input channel, float64. The convolution weights
    are drawn with a generator seeded by ``seed``, so the two variants start from the same
    weights: ``init="he"`` draws them from He et al.'s (2015) normal distribution for ReLU
    networks (variance ``2 / fan_in``, which keeps the signal's size through a plain stack),
    ``init="default"`` from PyTorch's default (uniform, variance ``1 / (3 fan_in)``, under
    which a plain stack's signal shrinks layer by layer). The linear layer always gets
    PyTorch's default. The convolutions have no bias with batch norm (its shift replaces it)
    and a zero bias without.

    Returns
    -------
    torch.nn.Sequential
    """
    channels, depth = positive_int("channels", channels), positive_int("depth", depth)
    classes = positive_int("classes", classes, 2)
    generator = torch.Generator().manual_seed(positive_int("seed", seed, 0))
    layers, c_in = [], 1
    for _ in range(depth):
        layers.append(nn.Conv2d(c_in, channels, 3, padding=1, bias=not batch_norm,
                                dtype=torch.float64))
        if batch_norm:
            layers.append(nn.BatchNorm2d(channels, dtype=torch.float64))
        layers.append(nn.ReLU())
        c_in = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes,
                                                                  dtype=torch.float64)]
    model = nn.Sequential(*layers)
    if init not in ("he", "default"):
        raise ValueError(f"init must be 'he' or 'default', got {init!r}")
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Conv2d) and init == "he":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=generator)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=5 ** 0.5, generator=generator)
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.zero_()
    return model


def training_curve(model, images, labels, lr: float, steps: int, batch_size: int = 64,
                   seed: int = 0) -> np.ndarray:
    """Train ``model`` with plain SGD on cross-entropy; the loss of each step's mini-batch.

    The mini-batches are drawn without replacement by ``numpy.random.default_rng(seed)``
    (a new permutation each epoch), so two models trained with the same ``seed`` see the same
    batches in the same order. Training stops when the loss is no longer finite; the
    remaining entries are NaN.

    Parameters
    ----------
    model : torch.nn.Module with float64 parameters, trained in place
    images : (N, 1, H, W) float64 tensor
    labels : (N,) int64 tensor
    lr : float > 0
    steps, batch_size : int
    seed : int

    Returns
    -------
    (steps,) float64 array
        The training loss before each update.
    """
    if not torch.is_tensor(images) or images.dtype != torch.float64 or images.ndim != 4:
        raise TypeError("images must be a float64 tensor of shape (N, C, H, W)")
    if not torch.is_tensor(labels) or labels.shape != images.shape[:1]:
        raise ValueError(f"labels must be a tensor of shape ({images.shape[0]},)")
    lr, steps = positive_number("lr", lr), positive_int("steps", steps)
    batch_size = positive_int("batch_size", batch_size)
    if batch_size > len(images):
        raise ValueError(f"batch_size must be at most the {len(images)} images, got {batch_size}")
    rng = np.random.default_rng(positive_int("seed", seed, 0))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    losses = np.full(steps, np.nan)
    order, pos = rng.permutation(len(images)), 0
    model.train()
    for step in range(steps):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(images)), 0
        batch = torch.from_numpy(order[pos:pos + batch_size])
        pos += batch_size
        loss = nn.functional.cross_entropy(model(images[batch]), labels[batch])
        if not torch.isfinite(loss):
            break
        losses[step] = loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def steps_to_reach(losses, threshold: float, window: int = 10) -> int | None:
    """The first step at which the mean of the last ``window`` losses is at most ``threshold``.

    Averaging over a window keeps one lucky mini-batch from counting as reaching it.

    Returns
    -------
    int or None
        A step number (``window - 1`` at the earliest), or None if the curve never gets there
        (or stopped, NaN, before).
    """
    losses = np.asarray(losses, dtype=float)
    if losses.ndim != 1:
        raise ValueError(f"losses must be 1-D, got shape {losses.shape}")
    window = positive_int("window", window)
    if len(losses) < window:
        return None
    means = np.convolve(losses, np.ones(window) / window, mode="valid")
    hits = np.nonzero(means <= threshold)[0]          # NaN compares False
    return int(hits[0]) + window - 1 if hits.size else None


def plot_training_curves(curves: dict, threshold: float | None = None):
    """Loss against step, one panel per setting (e.g. learning rate), one line per network.

    Parameters
    ----------
    curves : dict of panel title -> dict of line label -> (steps,) array
        NaN entries (a run that diverged) are left out of the line.
    threshold : float, optional
        Drawn as a dotted horizontal line.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(3.3 * len(curves), 2.9), sharey=True,
                             squeeze=False)
    for ax, (title, lines) in zip(axes[0], curves.items()):
        for label, losses in lines.items():
            losses = np.asarray(losses, dtype=float)
            ax.plot(np.arange(len(losses)), np.minimum(losses, 3.0), lw=1.2, label=label)
        if threshold is not None:
            ax.axhline(threshold, color="#555555", ls=":", lw=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylim(0, 3.0)
    axes[0][0].set_ylabel("training loss (cross-entropy)", fontsize=8)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig
