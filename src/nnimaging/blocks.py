"""Normalization layers and residual blocks (chapter 4).

* :func:`batch_norm`, with its running estimates, as ``torch.nn.BatchNorm2d`` computes it;
* a residual block, ``relu(x + F(x))`` (:class:`ResidualBlock`, He et al., 2016).

Activations are ``(N, C, H, W)``; the NumPy functions accept arrays or tensors and compute
in float64.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from .conv import _array, _int

__all__ = ["batch_norm", "ResidualBlock"]


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

class ResidualBlock(nn.Module):
    """``relu(x + F(x))`` with ``F`` = conv, batch norm, ReLU, conv, batch norm.

    The convolutions keep the size (``padding = kernel // 2``) and have no bias (batch norm's
    shift replaces it). With the last batch norm's scale set to zero, ``F = 0`` and the block
    is the identity on non-negative inputs (He et al., 2016).

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
        channels, kernel = _int("channels", channels, 1), _int("kernel", kernel, 1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd to keep the size, got {kernel}")
        pad = kernel // 2
        self.residual = nn.Sequential(
            nn.Conv2d(channels, channels, kernel, padding=pad, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, kernel, padding=pad, bias=False),
            nn.BatchNorm2d(channels))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.residual(x))
