"""Image degradations for the restoration chapters: additive Gaussian noise (and Gaussian blur).

Noise levels follow the denoising literature: ``sigma`` is the standard deviation on the
0..255 scale of 8-bit images (``sigma=25`` means a standard deviation of ``25/255`` for
images in [0, 1]). Noise is added in floating point and **not clipped**, as in the test
code of DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["add_gaussian_noise", "noisy_batch", "gaussian_kernel1d", "gaussian_blur"]


def _check_sigma(sigma) -> float:
    try:
        value = float(sigma)
    except (TypeError, ValueError):
        raise TypeError(f"sigma must be a number (0..255 scale), got {type(sigma).__name__}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"sigma must be a finite number >= 0 on the 0..255 scale, got {sigma}")
    return value


def add_gaussian_noise(image, sigma: float, seed: int = 0) -> np.ndarray:
    """Add white Gaussian noise of standard deviation ``sigma / 255`` to an image.

    The noise is drawn from ``numpy.random.default_rng(seed)`` in float64, so the same
    image, sigma and seed always give the same noisy image, whichever other images are
    processed before it (the evaluation protocol re-seeds for every image).

    Parameters
    ----------
    image : array of any shape, typically (H, W), float, values in [0, 1]
        The clean image.
    sigma : float >= 0
        Noise standard deviation on the 0..255 scale.
    seed : int
        Seed of the generator.

    Returns
    -------
    noisy : float32 array, same shape as ``image``
        ``image + sigma / 255 * z`` with ``z`` standard normal; not clipped, so values
        may leave [0, 1].
    """
    sigma = _check_sigma(sigma)
    clean = np.asarray(image)
    if not np.issubdtype(clean.dtype, np.floating):
        raise TypeError(f"image must be a float array with values in [0, 1], got dtype {clean.dtype}")
    z = np.random.default_rng(seed).standard_normal(clean.shape)
    return (clean.astype(np.float64) + (sigma / 255.0) * z).astype(np.float32)


def noisy_batch(clean: torch.Tensor, sigma, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise to a batch of images on its own device (used for training).

    Parameters
    ----------
    clean : (N, C, H, W) float tensor, values in [0, 1]
        Clean images.
    sigma : float or (N,) tensor
        Noise standard deviation on the 0..255 scale, one value for the batch or one per image
        (blind training draws a different level per patch). A tensor is not checked for
        negative values (that would synchronise the GPU at every training step).
    generator : torch.Generator, optional
        Generator on ``clean.device`` used for the noise.

    Returns
    -------
    (N, C, H, W) tensor, same dtype and device
        ``clean + sigma / 255 * z``, not clipped.
    """
    if not isinstance(clean, torch.Tensor) or clean.ndim != 4 or not clean.is_floating_point():
        got = f"{tuple(clean.shape)} {clean.dtype}" if isinstance(clean, torch.Tensor) else type(clean).__name__
        raise ValueError(f"clean must be a float tensor of shape (N, C, H, W), got {got}")
    z = torch.randn(clean.shape, generator=generator, device=clean.device, dtype=clean.dtype)
    if isinstance(sigma, torch.Tensor) and sigma.ndim > 0:
        if sigma.shape != (clean.shape[0],):
            raise ValueError(f"per-image sigma must have shape ({clean.shape[0]},), got {tuple(sigma.shape)}")
        scale = sigma.to(device=clean.device, dtype=clean.dtype).view(-1, 1, 1, 1) / 255.0
    else:
        scale = _check_sigma(sigma) / 255.0
    return clean + scale * z


def gaussian_kernel1d(std: float, radius: int | None = None) -> torch.Tensor:
    """Sampled, normalised 1-D Gaussian ``exp(-x**2 / (2 std**2))`` for ``x = -radius..radius``.

    Parameters
    ----------
    std : float >= 0
        Standard deviation in pixels. ``0`` gives the identity kernel ``[1.]``.
    radius : int, optional
        Half-width; default ``ceil(3 * std)``.

    Returns
    -------
    (2 * radius + 1,) float32 tensor summing to 1.
    """
    std = float(std)
    if not math.isfinite(std) or std < 0:
        raise ValueError(f"std must be a finite number >= 0 (pixels), got {std}")
    if radius is None:
        radius = math.ceil(3 * std)
    if int(radius) != radius or radius < 0:
        raise ValueError(f"radius must be an integer >= 0, got {radius}")
    radius = int(radius)
    if std == 0:
        kernel = torch.zeros(2 * radius + 1, dtype=torch.float64)
        kernel[radius] = 1.0
        return kernel.float()
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(x**2) / (2 * std**2))
    return (kernel / kernel.sum()).float()


def gaussian_blur(images: torch.Tensor, std: float, radius: int | None = None) -> torch.Tensor:
    """Separable Gaussian filter with reflected borders (output size == input size).

    Parameters
    ----------
    images : (N, C, H, W) float tensor
        Images to blur; each channel is filtered on its own.
    std : float >= 0
        Standard deviation of the Gaussian in pixels.
    radius : int, optional
        Kernel half-width, default ``ceil(3 * std)``.

    Returns
    -------
    (N, C, H, W) tensor of the same dtype and device.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = f"{tuple(images.shape)} {images.dtype}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a float tensor of shape (N, C, H, W), got {got}")
    kernel = gaussian_kernel1d(std, radius).to(device=images.device, dtype=images.dtype)
    r = (kernel.numel() - 1) // 2
    if r == 0:
        return images.clone()
    n, c, h, w = images.shape
    mode = "reflect" if r < min(h, w) else "replicate"
    x = F.pad(images.reshape(n * c, 1, h, w), (r, r, r, r), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w)
