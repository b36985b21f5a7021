"""Image degradations for the restoration chapters: additive Gaussian noise and blur.

Noise levels follow the denoising literature: ``sigma`` is the standard deviation on the
0..255 scale of 8-bit images (``sigma=25`` means a standard deviation of ``25/255`` for
images in [0, 1]). Noise is added in floating point and **not clipped**, as in the test
code of DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", IEEE TIP 2017).

Two blurs live here. :func:`gaussian_blur` (reflected borders, torch batches) is the
smoothing baseline of the denoising chapters. :func:`blur` is the forward model of the
deblurring chapter: a convolution with circular (periodic) boundaries, so that it is
diagonal in the Fourier domain and :func:`wiener_deconvolve` inverts it exactly where
the kernel's spectrum has no zeros. Kernels come from :func:`gaussian_kernel2d` and
:func:`motion_blur_kernel`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import SIGMA_UNIT, non_negative_number, positive_int

__all__ = [
    "add_gaussian_noise",
    "noisy_batch",
    "gaussian_kernel1d",
    "gaussian_blur",
    "gaussian_kernel2d",
    "motion_blur_kernel",
    "kernel_spectrum",
    "blur",
    "wiener_deconvolve",
    "kernel_from_spec",
    "Degradation",
]


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
    sigma = non_negative_number("sigma", sigma, SIGMA_UNIT)
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
        scale = non_negative_number("sigma", sigma, SIGMA_UNIT) / 255.0
    return clean + scale * z


def _gaussian_weights(std, radius) -> torch.Tensor:
    """The checked, normalised float64 weights behind :func:`gaussian_kernel1d`."""
    std = non_negative_number("std", std, " (pixels)")
    radius = positive_int("radius", math.ceil(3 * std) if radius is None else radius, 0)
    if std == 0:
        kernel = torch.zeros(2 * radius + 1, dtype=torch.float64)
        kernel[radius] = 1.0
        return kernel
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-(x**2) / (2 * std**2))
    return kernel / kernel.sum()


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
    return _gaussian_weights(std, radius).float()


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


# ----------------------------------------------------------------------------------------
# blur kernels, the circular blur model and the Wiener filter
# ----------------------------------------------------------------------------------------

_SUBPIXELS = 16
"""Sub-samples per pixel side used to rasterise the motion-blur segment (16 x 16 per pixel)."""


def gaussian_kernel2d(std: float, radius: int | None = None) -> np.ndarray:
    """Isotropic 2-D Gaussian blur kernel, the outer product of two :func:`gaussian_kernel1d`.

    Parameters
    ----------
    std : float >= 0
        Standard deviation in pixels (``0`` gives the 1 x 1 identity kernel).
    radius : int, optional
        Half-width; default ``ceil(3 * std)``.

    Returns
    -------
    (2 * radius + 1, 2 * radius + 1) float64 array, non-negative, summing to 1.
    """
    k = _gaussian_weights(std, radius).numpy()
    return np.outer(k, k)


def motion_blur_kernel(length: float, angle: float = 0.0) -> np.ndarray:
    """Linear motion blur: a segment of ``length`` pixels at ``angle`` degrees, anti-aliased.

    The kernel is the area that a 1-pixel-wide strip of ``length`` pixels, centred on the
    kernel's centre pixel and rotated by ``angle``, covers in each pixel (estimated with
    16 x 16 sub-samples per pixel), normalised to sum 1. Pixels the strip only grazes get
    a fraction of the weight: that is the anti-aliasing. The strip is symmetric about
    its centre, so the kernel equals itself rotated by 180 degrees, and ``angle`` and
    ``angle + 180`` give the same kernel. For an odd integer ``length`` and ``angle=0``
    the kernel is exactly a row of ``length`` weights ``1 / length`` (a horizontal box).

    Parameters
    ----------
    length : float >= 1
        Length of the motion in pixels.
    angle : float
        Direction in degrees, counter-clockwise from the horizontal **as displayed**
        (rows grow downwards): ``0`` is horizontal, ``90`` vertical, ``45`` runs from the
        bottom-left to the top-right corner.

    Returns
    -------
    (K, K) float64 array, K odd, non-negative, summing to 1
        The smallest odd square that holds the strip (all-zero outer rings are removed).
    """
    try:
        length, angle = float(length), float(angle)
    except (TypeError, ValueError):
        raise TypeError(f"length and angle must be numbers, got {type(length).__name__} and {type(angle).__name__}") from None
    if not math.isfinite(length) or length < 1:
        raise ValueError(f"length must be a finite number >= 1 (pixels), got {length}")
    if not math.isfinite(angle):
        raise ValueError(f"angle must be a finite number of degrees, got {angle}")
    theta = math.radians(angle % 180.0)
    c, s = math.cos(theta), math.sin(theta)
    if angle % 90.0 == 0:  # exact axes, so that 0 and 90 degrees give exact boxes
        c, s = (1.0, 0.0) if angle % 180.0 == 0 else (0.0, 1.0)
    half = length / 2
    radius = math.ceil(max(half * abs(c) + 0.5 * abs(s), half * abs(s) + 0.5 * abs(c)))
    # sub-sample offsets inside a pixel, symmetric about its centre
    sub = (np.arange(_SUBPIXELS) + 0.5) / _SUBPIXELS - 0.5
    coords = (np.arange(-radius, radius + 1)[:, None] + sub[None, :]).ravel()
    x = coords[None, :]  # columns, to the right
    y = -coords[:, None]  # rows, upwards (row index grows downwards)
    along = x * c + y * s
    across = -x * s + y * c
    inside = (np.abs(along) <= half) & (np.abs(across) <= 0.5)
    size = 2 * radius + 1
    kernel = inside.reshape(size, _SUBPIXELS, size, _SUBPIXELS).sum(axis=(1, 3)).astype(np.float64)
    while kernel.shape[0] > 1 and not (kernel[0].any() or kernel[-1].any() or kernel[:, 0].any() or kernel[:, -1].any()):
        kernel = kernel[1:-1, 1:-1]
    return kernel / kernel.sum()


def _as_kernel(kernel, image_shape) -> np.ndarray:
    """Check a 2-D blur kernel against the image size; return it as a float64 array."""
    if isinstance(kernel, torch.Tensor):
        kernel = kernel.detach().cpu().numpy()
    k = np.asarray(kernel)
    if k.ndim != 2:
        raise ValueError(f"kernel must be a 2-D array of odd shape (kh, kw), got shape {k.shape}")
    if not (np.issubdtype(k.dtype, np.floating) or np.issubdtype(k.dtype, np.integer)) or k.dtype == bool:
        raise TypeError(f"kernel must be a real float array, got dtype {k.dtype}")
    k = k.astype(np.float64)
    if k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"kernel must have odd height and width (its centre is a pixel), got shape {k.shape}")
    h, w = image_shape
    if k.shape[0] > h or k.shape[1] > w:
        raise ValueError(f"kernel of shape {k.shape} is larger than the image ({h}, {w})")
    if not np.all(np.isfinite(k)):
        raise ValueError("kernel has non-finite values")
    total = k.sum()
    if abs(total - 1) > 1e-6:
        raise ValueError(
            f"kernel must be normalised to sum 1 (a blur keeps the mean brightness), got sum {total:.6g}; "
            "divide it by its sum"
        )
    return k


def _check_image(image, name: str):
    """Return ("numpy", float array) for an (H, W) array or ("torch", tensor) for (N, C, H, W)."""
    if isinstance(image, torch.Tensor):
        if image.ndim != 4 or not image.is_floating_point():
            hint = "; add batch and channel axes with x[None, None]" if image.ndim == 2 else ""
            raise ValueError(
                f"{name} must be an (H, W) numpy array or an (N, C, H, W) float tensor, "
                f"got a tensor of shape {tuple(image.shape)} and dtype {image.dtype}{hint}"
            )
        return "torch", image
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) numpy array or an (N, C, H, W) float tensor, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} must be a float array, got dtype {array.dtype}")
    return "numpy", array


def kernel_spectrum(kernel, shape) -> np.ndarray:
    """Transfer function ``K`` of a kernel on an ``(H, W)`` grid (its 2-D DFT, centre at pixel 0).

    The kernel is zero-padded to ``shape`` and rolled so that its centre pixel sits at index
    ``(0, 0)`` (the ``ifftshift`` of the centred, padded kernel). Then circular convolution
    with the kernel is the product ``K * fft2(x)``, without any shift.

    Parameters
    ----------
    kernel : (kh, kw) float array, odd sizes, summing to 1
        The blur kernel (at most ``shape``).
    shape : (H, W)
        The image size.

    Returns
    -------
    (H, W) complex128 array; ``K[0, 0] == 1`` (the sum of the kernel).
    """
    h, w = (int(n) for n in shape)
    k = _as_kernel(kernel, (h, w))
    padded = np.zeros((h, w))
    padded[: k.shape[0], : k.shape[1]] = k
    padded = np.roll(padded, (-(k.shape[0] // 2), -(k.shape[1] // 2)), axis=(0, 1))
    return np.fft.fft2(padded)


def blur(image, kernel):
    """Blur with circular (periodic) boundaries: the forward model that the Wiener filter inverts.

    ``y[i, j] = sum_{a, b} kernel[a, b] x[(i - a + ca) mod H, (j - b + cb) mod W]`` with
    ``(ca, cb)`` the kernel's centre: a convolution (not a correlation) whose output
    pixel ``(i, j)`` is centred on input pixel ``(i, j)``. It is computed as
    ``ifft2(K * fft2(x))`` with ``K = kernel_spectrum(kernel, (H, W))``.

    Parameters
    ----------
    image : (H, W) float numpy array, or (N, C, H, W) float tensor
        Image(s); each channel of a tensor is blurred on its own.
    kernel : (kh, kw) float array or tensor, odd sizes, summing to 1
        Blur kernel, e.g. from :func:`gaussian_kernel2d` or :func:`motion_blur_kernel`; a sum
        other than 1 (beyond 1e-6) is a ValueError.

    Returns
    -------
    Same type, shape and dtype as ``image`` (numpy: computed in float64, then cast).
    """
    kind, x = _check_image(image, "image")
    otf = kernel_spectrum(kernel, x.shape[-2:])
    if kind == "numpy":
        return np.fft.ifft2(otf * np.fft.fft2(x.astype(np.float64))).real.astype(x.dtype)
    otf_t = torch.from_numpy(otf).to(device=x.device, dtype=_complex_dtype(x.dtype))
    return torch.fft.ifft2(otf_t * torch.fft.fft2(x)).real.to(x.dtype)


def _complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def wiener_deconvolve(blurred, kernel, nsr: float):
    """Wiener deconvolution of a circularly blurred image: ``X = conj(K) Y / (|K|^2 + nsr)``.

    ``Y`` is the DFT of the observation, ``K`` the transfer function of the kernel
    (:func:`kernel_spectrum`, kernel centred so that the estimate is not shifted) and
    ``nsr`` the noise-to-signal power ratio, taken constant over frequencies. ``nsr = 0``
    is the inverse filter ``Y / K``: exact without noise if ``K`` has no zeros, but it
    divides the noise by ``|K|``, which explodes where the spectrum is small. A larger
    ``nsr`` damps those frequencies (more noise suppression, less sharpness).

    Parameters
    ----------
    blurred : (H, W) float numpy array, or (N, C, H, W) float tensor
        The observation (blurred, possibly noisy). Tensors keep their device and dtype and
        the result is differentiable with respect to them.
    kernel : (kh, kw) float array or tensor, odd sizes, summing to 1
        The blur kernel of the forward model :func:`blur`. A kernel whose sum is not 1
        (within 1e-6) is an error, not a warning: it changes the brightness and silently
        rescales the meaning of ``nsr``.
    nsr : float >= 0
        Noise-to-signal power ratio (e.g. noise variance / signal variance for white
        signal and noise).

    Returns
    -------
    Same type, shape and dtype as ``blurred``: the estimate of the sharp image
    (numpy: computed in float64, then cast).

    Raises
    ------
    ValueError
        Wrong shapes, a kernel that is not normalised or has even sizes, ``nsr < 0``, or
        ``nsr == 0`` while the kernel's spectrum vanishes (``|K| < 1000 eps``) somewhere.
    """
    kind, y = _check_image(blurred, "blurred")
    nsr = non_negative_number("nsr", nsr)
    otf = kernel_spectrum(kernel, y.shape[-2:])
    power = np.abs(otf) ** 2
    eps = np.finfo(np.float64 if kind == "numpy" or y.dtype == torch.float64 else np.float32).eps
    smallest = float(np.sqrt(power.min()))
    if nsr == 0 and smallest < 1000 * eps:
        raise ValueError(
            f"the kernel's spectrum vanishes at some frequency (min |K| = {smallest:.3g}), so the inverse filter "
            "(nsr=0) is undefined; use nsr > 0"
        )
    gain = np.conj(otf) / (power + nsr)
    if kind == "numpy":
        return np.fft.ifft2(gain * np.fft.fft2(y.astype(np.float64))).real.astype(y.dtype)
    gain_t = torch.from_numpy(gain).to(device=y.device, dtype=_complex_dtype(y.dtype))
    return torch.fft.ifft2(gain_t * torch.fft.fft2(y)).real.to(y.dtype)


# ----------------------------------------------------------------------------------------
# the degradation a restoration network is trained and tested on
# ----------------------------------------------------------------------------------------


def kernel_from_spec(spec: str) -> np.ndarray:
    """A blur kernel from a short text spec, as used on the command line.

    ``"gaussian:STD"`` gives :func:`gaussian_kernel2d` ``(STD)``; ``"motion:LENGTH"`` or
    ``"motion:LENGTH:ANGLE"`` gives :func:`motion_blur_kernel`.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"blur kernel spec must look like 'gaussian:2' or 'motion:9:30', got {spec!r}")
    kind, *args = spec.split(":")
    try:
        numbers = [float(a) for a in args]
    except ValueError:
        raise ValueError(f"blur kernel spec {spec!r}: the parameters after ':' must be numbers") from None
    if kind == "gaussian" and len(numbers) == 1:
        return gaussian_kernel2d(numbers[0])
    if kind == "motion" and len(numbers) in (1, 2):
        return motion_blur_kernel(*numbers)
    raise ValueError(f"blur kernel spec must be 'gaussian:STD' or 'motion:LENGTH[:ANGLE]', got {spec!r}")


class Degradation:
    """What a restoration network sees: noise only, or a circular blur then noise, then optionally Wiener.

    One object serves training (:meth:`batch`, on the device, with a torch generator) and
    testing (:meth:`image`, numpy, seeded per image like the evaluation protocol), so the
    two cannot drift apart.

    Parameters
    ----------
    blur : str or None
        ``None`` for denoising, or a kernel spec for :func:`kernel_from_spec` (deblurring
        with the circular forward model :func:`blur`).
    wiener_nsr : float or None
        With a blur: pass the observation through :func:`wiener_deconvolve` with this
        noise-to-signal ratio before the network sees it ("Wiener + network").
    """

    def __init__(self, blur: str | None = None, wiener_nsr: float | None = None):
        self.blur_spec = blur
        self.kernel = None if blur is None else kernel_from_spec(blur)
        if wiener_nsr is not None and blur is None:
            raise ValueError("wiener_nsr needs a blur kernel: Wiener deconvolution undoes a blur")
        self.wiener_nsr = None if wiener_nsr is None else non_negative_number("wiener_nsr", wiener_nsr)

    @property
    def task(self) -> str:
        return "denoise" if self.kernel is None else "deblur"

    def describe(self) -> dict:
        """JSON-ready description, stored with trained weights and results."""
        if self.kernel is None:
            return {"task": "denoise"}
        return {"task": "deblur", "blur": self.blur_spec, "boundary": "circular", "wiener_nsr": self.wiener_nsr}

    def _after_noise(self, observed):
        if self.wiener_nsr is None:
            return observed
        return wiener_deconvolve(observed, self.kernel, self.wiener_nsr)

    def batch(self, clean: torch.Tensor, sigma, generator: torch.Generator | None = None) -> torch.Tensor:
        """Degrade a batch ``(N, C, H, W)`` on its device; ``sigma`` as in :func:`noisy_batch`."""
        if self.kernel is None:
            return noisy_batch(clean, sigma, generator)
        return self._after_noise(noisy_batch(blur(clean, self.kernel), sigma, generator))

    def image(self, clean, sigma: float, seed: int = 0) -> np.ndarray:
        """Degrade one ``(H, W)`` image in [0, 1]; noise as in :func:`add_gaussian_noise`."""
        if self.kernel is None:
            return add_gaussian_noise(clean, sigma, seed)
        clean = np.asarray(clean)
        blurred = blur(clean.astype(np.float64), self.kernel)
        return np.asarray(self._after_noise(add_gaussian_noise(blurred, sigma, seed)), dtype=clean.dtype)

    def __repr__(self) -> str:
        return f"Degradation(blur={self.blur_spec!r}, wiener_nsr={self.wiener_nsr!r})"
