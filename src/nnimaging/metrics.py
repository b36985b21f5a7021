"""Image-quality metrics. One PSNR for the whole book."""

from __future__ import annotations

import numpy as np

from ._checks import to_numpy

__all__ = ["mse", "psnr", "psnr_per_image"]


def _as_float_arrays(estimate, reference):
    est, ref = to_numpy(estimate, np.float64), to_numpy(reference, np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"estimate and reference must have the same shape, got {est.shape} and {ref.shape}")
    if est.size == 0:
        raise ValueError("cannot compare empty arrays")
    return est, ref


def mse(estimate, reference) -> float:
    """Mean squared error between two arrays (or tensors) of the same shape."""
    est, ref = _as_float_arrays(estimate, reference)
    return float(np.mean((est - ref) ** 2))


def psnr(estimate, reference, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(peak**2 / MSE)``.

    Parameters
    ----------
    estimate, reference : array or tensor of the same shape
        Images with values in ``[0, peak]`` (for example ``(H, W)`` float arrays in [0, 1]).
    peak : float
        Largest possible value: 1.0 for images in [0, 1], 255 for 8-bit images.

    Returns
    -------
    float
        PSNR over all elements; ``inf`` for identical inputs.
    """
    if peak <= 0:
        raise ValueError(f"peak must be positive, got {peak}")
    err = mse(estimate, reference)
    return float("inf") if err == 0 else float(10 * np.log10(peak**2 / err))


def psnr_per_image(estimates, references, peak: float = 1.0) -> np.ndarray:
    """PSNR of each image in a batch: inputs of shape ``(N, ...)``, output of shape ``(N,)``.

    Papers report the mean of this over a test set (not the PSNR of the pooled MSE).
    """
    est, ref = _as_float_arrays(estimates, references)
    if est.ndim < 2:
        raise ValueError(f"expected a batch of shape (N, ...), got shape {est.shape}")
    return np.array([psnr(e, r, peak) for e, r in zip(est, ref)])
