"""Encoders, decoders and the U-Net (chapter 6).

The helpers of the chapter, by section:

* autoencoders on MNIST: :func:`train_autoencoder` (the training loop of the chapter in a
  function), :func:`reconstruct`, :func:`reconstruction_errors` and :func:`latent_sweep`
  (one autoencoder per code size, remembered for the demo :func:`latent_size_demo`);
* anomaly detection by reconstruction error: :func:`roc_curve`, :func:`roc_auc` (the
  Mann-Whitney statistic, no scikit-learn), and images the digit model never saw:
  :func:`image_patches` (crops of natural images) and :func:`draw_letters`;
* variational autoencoders: :func:`gaussian_kl`, the KL term of the ELBO in closed form;
* the U-Net: :func:`unet_receptive_field` and the architecture figure :func:`plot_unet`;
* Wiener deconvolution: :func:`wiener_sweep` (PSNR over noise-to-signal ratios) and the
  demo :func:`wiener_demo`;
* the deep image prior: :func:`deep_image_prior` (fit a randomly initialised U-Net to one
  noisy image), :func:`deep_image_prior_example` and the demo :func:`deep_image_prior_demo`.

The demos are precomputed-frame demos (no JavaScript twin): their factories take JSON
arguments that fully define what they show; the expensive part (training, fitting) runs when
the factory is called and is remembered (``functools.lru_cache``) so that a chapter can
print numbers from the same run that the demo shows without computing it twice. The
factories' defaults are small, quick settings; the chapter passes its own.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .demo import Choice, Demo, Image, Line, Panel, Points, Slider, Text, VLine, register
from .metrics import psnr

__all__ = [
    "train_autoencoder", "reconstruct", "reconstruction_errors", "latent_sweep",
    "latent_size_demo", "tile", "roc_curve", "roc_auc", "image_patches", "draw_letters",
    "gaussian_kl", "unet_receptive_field", "receptive_field_widths", "plot_unet",
    "wiener_sweep", "wiener_demo",
    "deep_image_prior", "deep_image_prior_example", "deep_image_prior_demo",
    "set12_crop", "plot_code_space", "plot_error_histograms", "plot_roc", "plot_dip_curves",
    "MNIST_SIZE",
]

MNIST_SIZE = 28
"""Height and width of an MNIST digit."""


# ----------------------------------------------------------------------------- checks
def _int(name: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _positive(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def _digits(images, name: str = "images") -> torch.Tensor:
    """``(N, 28, 28)`` float images in [0, 1] (array or tensor) as an ``(N, 1, 28, 28)`` tensor."""
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3 or arr.shape[1:] != (MNIST_SIZE, MNIST_SIZE):
        raise ValueError(f"{name} must have shape (N, 28, 28) (or (N, 1, 28, 28)), got shape "
                         f"{arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be a float array with values in [0, 1], got dtype "
                        f"{arr.dtype}; divide 8-bit images by 255")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must have values in [0, 1], got [{arr.min():.3g}, "
                         f"{arr.max():.3g}]")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))[:, None]


def _image(name: str, image) -> np.ndarray:
    """A 2-D float image as a float64 array (clear error otherwise)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an (H, W) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name} must be a float array (values in [0, 1]), got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite values")
    return arr.astype(np.float64)


# ----------------------------------------------------------------------------- autoencoders
def train_autoencoder(images, latent: int, epochs: int = 3, batch_size: int = 32,
                      lr: float = 1e-3, width: int = 16, seed: int = 0, device="cpu",
                      dtype=torch.float64):
    """Train a :class:`~nnimaging.models.ConvAutoencoder` to reproduce its input (MSE, Adam).

    The loop of the chapter: shuffle, take a batch, reconstruct it, and step on the mean
    squared difference between reconstruction and input. It is deterministic for a given
    ``seed`` (initial weights and shuffling) and leaves the global random state untouched.
    The defaults (Adam at 1e-3, batches of 32) train every code size reliably; at 3e-3 some
    initialisations collapse to an all-black output, where the sigmoid saturates and the
    gradient vanishes.

    Parameters
    ----------
    images : (N, 28, 28) float array or tensor, values in [0, 1]
        Training digits (``nnimaging.data.load_mnist("train")[0]``).
    latent : int >= 1
        Code size.
    epochs, batch_size : int >= 1
        Passes over the data and images per step (the last batch of an epoch may be smaller).
    lr : float > 0
        Adam learning rate.
    width : int >= 1
        Feature maps of the autoencoder's first convolution.
    seed : int
        Seed of the initial weights and of the shuffling.
    device : str or torch.device
        Where to train; the returned model stays there.
    dtype : torch.dtype
        Precision of the weights and the arithmetic. float64 by default: a training loop
        amplifies the last-bit rounding differences between processors (float32 convolutions
        sum in an order chosen by the processor), and in float64 they stay far below the
        digits the chapter prints, so its outputs are the same on every machine.

    Returns
    -------
    model : ConvAutoencoder
        The trained model, in evaluation mode.
    losses : (epochs * ceil(N / batch_size),) float64 array
        Training loss (batch MSE) of every step.
    """
    from .models import ConvAutoencoder

    x = _digits(images)
    if len(x) == 0:
        raise ValueError("need at least one training image, got 0")
    epochs, batch_size = _int("epochs", epochs, 1), _int("batch_size", batch_size, 1)
    lr = _positive("lr", lr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ConvAutoencoder(latent=latent, width=width)
    model = model.to(device=device, dtype=dtype).train()
    x = x.to(device=device, dtype=dtype)
    order = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=order).to(device)
        for start in range(0, len(x), batch_size):
            batch = x[perm[start:start + batch_size]]
            loss = F.mse_loss(model(batch), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.detach())
    return model.eval(), torch.stack(losses).double().cpu().numpy()


def reconstruct(model, images, batch_size: int = 1000) -> np.ndarray:
    """Reconstructions ``decode(encode(x))`` of digits.

    Parameters
    ----------
    model : ConvAutoencoder
    images : (N, 28, 28) float array or tensor, values in [0, 1]

    Returns
    -------
    (N, 28, 28) float array (float32, or float64 for a float64 model), values in (0, 1).
    """
    x = _digits(images)
    batch_size = _int("batch_size", batch_size, 1)
    device, dtype = next(model.parameters()).device, next(model.parameters()).dtype
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                out.append(model(x[start:start + batch_size].to(device=device, dtype=dtype)).cpu())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, MNIST_SIZE, MNIST_SIZE), np.float32)
    return torch.cat(out)[:, 0].numpy()


def reconstruction_errors(model, images) -> np.ndarray:
    """Mean squared reconstruction error of each image: ``mean((decode(encode(x)) - x)**2)``.

    Parameters
    ----------
    model : ConvAutoencoder
    images : (N, 28, 28) float array or tensor, values in [0, 1]

    Returns
    -------
    (N,) float64 array, one error per image.
    """
    x = _digits(images)[:, 0].numpy()
    return ((reconstruct(model, x) - x.astype(np.float64)) ** 2).mean(axis=(1, 2))


def latent_sweep(latents: Sequence[int] = (2, 4, 8, 16, 32), epochs: int = 3,
                 n_train: int = 8000, batch_size: int = 32, seed: int = 0) -> dict:
    """One autoencoder per code size, trained on MNIST "train" and scored on "heldout".

    Results are remembered for the same settings (the demo :func:`latent_size_demo` and the
    chapter share one training run); do not modify the returned models.

    Parameters
    ----------
    latents : sequence of int
        Code sizes.
    epochs, batch_size, seed
        As in :func:`train_autoencoder` (the same seed for every code size).
    n_train : int
        Use the first ``n_train`` of the 8,000 "train" digits.

    Returns
    -------
    dict : latent -> {"model", "losses", "heldout_mse"}
        ``heldout_mse`` is the mean of :func:`reconstruction_errors` over the 2,000 held-out
        digits.
    """
    latents = tuple(_int("latent", k, 1) for k in latents)
    if not latents:
        raise ValueError("latents must name at least one code size")
    return _latent_sweep(latents, _int("epochs", epochs, 1), _int("n_train", n_train, 1),
                         _int("batch_size", batch_size, 1), int(seed))


@functools.lru_cache(maxsize=4)
def _latent_sweep(latents: tuple, epochs: int, n_train: int, batch_size: int, seed: int) -> dict:
    from .data import load_mnist

    train, _ = load_mnist("train")
    heldout, _ = load_mnist("heldout")
    out = {}
    for k in latents:
        model, losses = train_autoencoder(train[:n_train], k, epochs=epochs,
                                          batch_size=batch_size, seed=seed)
        out[k] = {"model": model, "losses": losses,
                  "heldout_mse": float(reconstruction_errors(model, heldout).mean())}
    return out


def tile(images, ncols: int | None = None, gap: int = 1, fill: float = 1.0) -> np.ndarray:
    """Arrange equally sized images in a grid, ``gap`` pixels of ``fill`` between them.

    Parameters
    ----------
    images : (N, h, w) array
    ncols : int, optional
        Images per row (default: all in one row).

    Returns
    -------
    (rows h + (rows - 1) gap, ncols w + (ncols - 1) gap) float64 array.
    """
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim != 3 or len(arr) == 0:
        raise ValueError(f"images must be a non-empty (N, h, w) stack, got shape {arr.shape}")
    n, h, w = arr.shape
    ncols = n if ncols is None else _int("ncols", ncols, 1)
    gap = _int("gap", gap, 0)
    rows = math.ceil(n / ncols)
    out = np.full((rows * h + (rows - 1) * gap, ncols * w + (ncols - 1) * gap), float(fill))
    for i, im in enumerate(arr):
        r, c = divmod(i, ncols)
        out[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = im
    return out


@register("encdec.latent_size")
def latent_size_demo(latents: Sequence[int] = (2, 8, 32), epochs: int = 1, n_train: int = 1000,
                     n_show: int = 8, seed: int = 0) -> Demo:
    """Reconstructions of held-out digits by autoencoders with different code sizes.

    Trains one autoencoder per code size with :func:`latent_sweep` (remembered, so a
    chapter that called ``latent_sweep`` with the same settings does not train twice); the
    defaults are a quick preview (1 epoch on 1,000 digits).

    Parameters
    ----------
    latents : sequence of int
        Code sizes offered in the drop-down.
    epochs, n_train, seed
        Passed to :func:`latent_sweep`.
    n_show : int
        Held-out digits shown (the first ``n_show`` of "heldout").
    """
    from .data import load_mnist

    latents = tuple(int(k) for k in latents)
    n_show = _int("n_show", n_show, 1)
    sweep = latent_sweep(latents, epochs, n_train, seed=seed)
    digits = load_mnist("heldout")[0][:n_show]
    codes = np.log2(np.array(latents, dtype=float))
    mses = np.array([sweep[k]["heldout_mse"] for k in latents])
    pictures = {k: tile(np.concatenate([digits, reconstruct(sweep[k]["model"], digits)]),
                        ncols=n_show) for k in latents}

    def compute(latent):
        i = latents.index(latent)
        return {"picture": pictures[latent], "code": codes, "mse": mses,
                "here": codes[i:i + 1], "here_mse": mses[i:i + 1], "err": float(mses[i])}

    top = float(np.max(mses)) * 1.15
    return Demo(
        name="encdec.latent_size",
        title="Autoencoders with different code sizes",
        controls=[Choice("latent", latents, latents[len(latents) // 2], label="code size")],
        compute=compute,
        panels=[Panel([Image("picture", 0.0, 1.0)],
                      title="top: held-out digits, bottom: reconstructions", axes=False),
                Panel([Line("code", "mse"), Points("here", "here_mse", size=8, color="#d62728"),
                       Text("code size {latent}: MSE {err:.4f}", 0.3, 0.9, size=10)],
                      title="held-out reconstruction error", xlabel="log2(code size)",
                      ylabel="mean squared error",
                      xlim=(float(codes.min()) - 0.3, float(codes.max()) + 0.3),
                      ylim=(0.0, top))],
        alt=("Two panels. Left: a row of held-out MNIST digits above their reconstructions by an "
             "autoencoder whose code size is chosen in the drop-down; with a code of 2 numbers "
             "the reconstructions are blurry, generic digits, and with larger codes they keep "
             "the shape and the stroke details of each digit. Right: the mean squared "
             "reconstruction error on the held-out digits for each code size, falling as the "
             "code grows, with a red marker at the chosen size."),
        ncols=2, height=240,
        args={"latents": list(latents), "epochs": epochs, "n_train": n_train, "n_show": n_show,
              "seed": seed},
    )


# ----------------------------------------------------------------------------- anomaly scores
def _scores(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} must hold at least one score, got none")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite scores")
    return arr


def roc_curve(normal, anomalous):
    """Receiver operating characteristic of the rule "anomalous if score >= threshold".

    Parameters
    ----------
    normal : (n,) array of float
        Scores of normal examples (negatives), e.g. reconstruction errors of held-out digits.
    anomalous : (m,) array of float
        Scores of anomalous examples (positives).

    Returns
    -------
    fpr, tpr : (T + 1,) float64 arrays
        False positive rate (share of ``normal`` flagged) and true positive rate (share of
        ``anomalous`` flagged) for each threshold, starting at (0, 0) and ending at (1, 1).
    thresholds : (T + 1,) float64 array
        The distinct scores in decreasing order, preceded by ``inf`` (nothing flagged).
    """
    normal, anomalous = _scores("normal", normal), _scores("anomalous", anomalous)
    thresholds = np.unique(np.concatenate([normal, anomalous]))[::-1]
    thresholds = np.concatenate([[np.inf], thresholds])
    neg, pos = np.sort(normal), np.sort(anomalous)
    fpr = (len(neg) - np.searchsorted(neg, thresholds, side="left")) / len(neg)
    tpr = (len(pos) - np.searchsorted(pos, thresholds, side="left")) / len(pos)
    return fpr, tpr, thresholds


def roc_auc(normal, anomalous) -> float:
    """Area under the ROC curve: the probability that an anomaly scores above a normal example.

    Computed as the Mann-Whitney statistic, ``P(a > n) + P(a = n) / 2`` over all pairs of an
    anomalous score ``a`` and a normal score ``n`` (ties count half), which equals the
    trapezoidal area under :func:`roc_curve`. 0.5: the score does not separate the two
    groups; 1: every anomaly scores above every normal example.

    Parameters
    ----------
    normal, anomalous : arrays of float
        Scores of the two groups (any lengths >= 1).

    Returns
    -------
    float in [0, 1]
    """
    normal, anomalous = _scores("normal", normal), _scores("anomalous", anomalous)
    neg = np.sort(normal)
    below = np.searchsorted(neg, anomalous, side="left")
    ties = np.searchsorted(neg, anomalous, side="right") - below
    return float((below + 0.5 * ties).sum() / (len(neg) * len(anomalous)))


def image_patches(images: Sequence, n: int, size: int = MNIST_SIZE, zoom: int = 4,
                  seed: int = 0) -> np.ndarray:
    """Random square crops of images, shrunk by block averaging (e.g. natural images as 28x28).

    Each patch is a crop of ``size * zoom`` pixels at a random position of a randomly chosen
    image, reduced to ``size x size`` by averaging ``zoom x zoom`` blocks.

    Parameters
    ----------
    images : sequence of (H, W) float arrays, values in [0, 1]
        Source images, each at least ``size * zoom`` pixels high and wide.
    n : int >= 1
        Number of patches.
    size, zoom : int >= 1
        Output side and shrink factor.
    seed : int
        Seed of ``numpy.random.default_rng`` for the positions.

    Returns
    -------
    (n, size, size) float32 array, values in [0, 1].
    """
    n, size, zoom = _int("n", n, 1), _int("size", size, 1), _int("zoom", zoom, 1)
    sources = [_image(f"images[{i}]", im) for i, im in enumerate(images)]
    if not sources:
        raise ValueError("need at least one source image")
    side = size * zoom
    for i, im in enumerate(sources):
        if min(im.shape) < side:
            raise ValueError(f"images[{i}] has shape {im.shape}, smaller than the crop of "
                             f"{side} x {side} pixels (size * zoom)")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size))
    for j in range(n):
        im = sources[rng.integers(len(sources))]
        r = rng.integers(im.shape[0] - side + 1)
        c = rng.integers(im.shape[1] - side + 1)
        crop = im[r:r + side, c:c + side]
        out[j] = crop.reshape(size, zoom, size, zoom).mean(axis=(1, 3))
    return out.astype(np.float32)


def draw_letters(letters: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", size: int = MNIST_SIZE,
                 height: float = 20.0, supersample: int = 4) -> np.ndarray:
    """Capital letters drawn like MNIST digits: white strokes on black, centred, anti-aliased.

    Each glyph outline (DejaVu Sans, the font that ships with matplotlib) is scaled so that
    its larger side is ``height`` pixels, centred by its bounding box in a ``size x size``
    image and rasterised by testing ``supersample**2`` points per pixel (even-odd rule, so
    the holes of A, B, D ... stay open; the fraction inside is the grey level). No font
    renderer is involved, so the images are the same on every machine.

    Parameters
    ----------
    letters : str
        The characters to draw, one image each.
    size : int
        Image side (28 for MNIST).
    height : float
        Larger side of each glyph in pixels (MNIST digits fit in a 20 x 20 box).
    supersample : int
        Sub-samples per pixel side.

    Returns
    -------
    (len(letters), size, size) float32 array, values in [0, 1].
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.path import Path as MplPath
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    if not isinstance(letters, str) or not letters or any(ch.isspace() for ch in letters):
        raise ValueError(f"letters must be a non-empty string without spaces, got {letters!r}")
    size, supersample = _int("size", size, 1), _int("supersample", supersample, 1)
    height = _positive("height", height)
    font = FontProperties(family="DejaVu Sans")
    sub = (np.arange(size * supersample) + 0.5) / supersample  # sample centres, in pixels
    gx, gy = np.meshgrid(sub, sub)
    points = np.column_stack([gx.ravel(), gy.ravel()])
    out = np.empty((len(letters), size, size))
    for i, ch in enumerate(letters):
        path = TextPath((0, 0), ch, size=100, prop=font)
        box = path.get_extents()  # the outline's extent (CLOSEPOLY vertices are placeholders)
        lo, hi = box.min, box.max
        scale = height / max(hi[1] - lo[1], hi[0] - lo[0])
        centre = (lo + hi) / 2
        # glyph coordinates grow upwards, image rows downwards: flip y
        transformed = path.transformed(Affine2D().translate(-centre[0], -centre[1])
                                       .scale(scale, -scale).translate(size / 2, size / 2))
        inside = np.zeros(len(points), bool)
        for polygon in transformed.to_polygons():  # even-odd rule: holes flip the inside
            inside ^= MplPath(polygon).contains_points(points)
        inside = inside.reshape(size * supersample, size * supersample)
        out[i] = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return out.astype(np.float32)


# ----------------------------------------------------------------------------- VAE
def gaussian_kl(mu, logvar) -> np.ndarray:
    """KL divergence of ``N(mu, diag(exp(logvar)))`` from the standard normal ``N(0, I)``.

    The regulariser of a variational autoencoder's ELBO, in closed form:
    ``KL = 1/2 sum_j (mu_j**2 + sigma_j**2 - log sigma_j**2 - 1)`` with
    ``sigma_j**2 = exp(logvar_j)``. It is zero exactly when ``mu = 0`` and ``sigma = 1``.

    Parameters
    ----------
    mu, logvar : (..., d) arrays of the same shape
        Means and log-variances of the encoder's Gaussian, one row per image.

    Returns
    -------
    (...,) float64 array (a float for 1-D inputs): the divergence of each row, in nats.
    """
    mu = np.asarray(mu.detach().cpu() if hasattr(mu, "detach") else mu, dtype=np.float64)
    logvar = np.asarray(logvar.detach().cpu() if hasattr(logvar, "detach") else logvar,
                        dtype=np.float64)
    if mu.shape != logvar.shape or mu.ndim == 0:
        raise ValueError(f"mu and logvar must be arrays of the same shape (..., d), got "
                         f"{mu.shape} and {logvar.shape}")
    kl = 0.5 * (mu**2 + np.exp(logvar) - logvar - 1.0).sum(axis=-1)
    return float(kl) if kl.ndim == 0 else kl


# ----------------------------------------------------------------------------- U-Net
_UPSAMPLE_KINDS = ("transpose", "nearest", "bilinear")


def unet_receptive_field(depth: int, upsample: str = "transpose", kernel: int = 3,
                         convs_per_block: int = 2) -> int:
    """Receptive field (pixels along one axis) of one output pixel of a U-Net.

    The longest path runs through the bottleneck. Down the encoder it is a plain stack
    (``convs_per_block`` convolutions of ``kernel x kernel`` per level, 2x2 max pooling with
    stride 2 between levels), whose field :func:`nnimaging.conv.receptive_field_table`
    computes. Up the decoder the rule ``r += (k - 1) j`` goes on with the jump ``j`` halving
    at every upsampling: a 2x2 transposed convolution with stride 2 adds nothing (each output
    pixel comes from one input pixel), nearest upsampling neither but is followed by a 3x3
    convolution, and bilinear upsampling by 2 mixes two neighbours (``+ j``) before that
    convolution. The skip connections carry smaller fields, so they do not enlarge it.

    For :class:`nnimaging.models.UNet` (3x3 kernels, two per block, transposed convolutions)
    this is ``13 * 2**depth - 8``.

    The rule assumes that every output pixel has a field of the same size, which holds for
    stacks of convolutions and poolings. Upsampling breaks it: two neighbouring fine pixels
    share one coarse parent, so a window of fine pixels reaches one coarse pixel more or less
    depending on where it starts. From ``depth = 3`` (transposed convolutions) the fields of
    individual output pixels alternate around this value with the position modulo
    ``2**depth`` (92 and 100 pixels for depth 3); the value returned is their average over
    the positions (see :func:`receptive_field_widths`).

    Parameters
    ----------
    depth : int >= 0
        Number of poolings (0: a single block).
    upsample : {"transpose", "nearest", "bilinear"}
        As in ``UNet(upsample=...)``.
    kernel : int, odd
        Kernel size of the block convolutions.
    convs_per_block : int >= 1

    Returns
    -------
    int
    """
    from .conv import receptive_field_table

    depth = _int("depth", depth, 0)
    kernel, convs_per_block = _int("kernel", kernel, 1), _int("convs_per_block", convs_per_block, 1)
    if upsample not in _UPSAMPLE_KINDS:
        raise ValueError(f"upsample must be one of {_UPSAMPLE_KINDS}, got {upsample!r}")
    block = [(kernel, 1)] * convs_per_block
    down = (block + [(2, 2)]) * depth + block
    table = receptive_field_table(down)
    rf, jump = table[-1]["rf"], table[-1]["jump"]
    for _ in range(depth):
        if upsample == "bilinear":
            rf += jump  # two neighbours of the coarse grid
        jump //= 2
        if upsample != "transpose":
            rf += (3 - 1) * jump  # the 3x3 convolution after the interpolation
        rf += convs_per_block * (kernel - 1) * jump
    return rf


def receptive_field_widths(model, size: int, count: int, trials: int = 8,
                           seed: int = 0) -> np.ndarray:
    """Receptive-field widths of ``count`` neighbouring output pixels, measured with autograd.

    Like :func:`nnimaging.conv.empirical_receptive_field`, but for the output pixels
    ``(c, c), (c, c + 1), ..., (c, c + count - 1)`` with ``c = size // 2`` of an
    ``(N, 1, size, size)`` input: for each, the width (in input columns) of the bounding box of
    the non-zero gradient, accumulated over ``trials`` random inputs (passed as one batch, in
    evaluation mode). In a stack of convolutions and poolings every output pixel has the same
    field; after upsampling, neighbouring pixels can differ.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(N, 1, size, size)`` to ``(N, C, size', size')``.
    size : int
        Input side, large enough that no field reaches the border.
    count : int >= 1
        Number of neighbouring output pixels.
    trials : int >= 1
        Random inputs (a max pooling passes gradient to one input of its window only, a
        ReLU to none where it is off: several inputs are needed to see the whole field).
    seed : int
        Seed of the random inputs (a local ``torch.Generator``).

    Returns
    -------
    (count,) int64 array of widths in pixels.
    """
    size, count = _int("size", size, 1), _int("count", count, 1)
    trials = _int("trials", trials, 1)
    gen = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    dtype = params[0].dtype if params else torch.float32
    x = torch.randn(trials, 1, size, size, generator=gen, dtype=dtype, requires_grad=True)
    was_training = model.training
    model.eval()
    try:
        out = model(x)
        c = out.shape[-1] // 2
        if c + count > out.shape[-1]:
            raise ValueError(f"count={count} pixels right of the centre leave the output of "
                             f"width {out.shape[-1]}")
        widths = []
        for j in range(count):
            (grad,) = torch.autograd.grad(out[:, :, c, c + j].sum(), x, retain_graph=True)
            cols = np.nonzero(grad.abs().sum(dim=(0, 1, 2)).numpy() > 0)[0]
            widths.append(int(cols.max() - cols.min() + 1) if cols.size else 0)
    finally:
        model.train(was_training)
    return np.array(widths, dtype=np.int64)


def plot_unet(model, size: int = 64):
    """Draw a U-Net's architecture: blocks per level, pooling, upsampling and skip connections.

    Each box is the output of one block of two 3x3 convolutions; its height follows the
    feature maps' side (``size / 2**level``), its width grows with the number of channels, and
    its label gives both. Red
    arrows: 2x2 max pooling; green arrows: upsampling; grey dashed arrows: skip connections
    (copy and concatenate); the 1x1 convolution at the end maps back to the image channels.

    Parameters
    ----------
    model : nnimaging.models.UNet
    size : int
        Input side used for the labels (a multiple of ``2**depth``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Rectangle

    from .models import UNet

    if not isinstance(model, UNet):
        raise TypeError(f"model must be an nnimaging.models.UNet, got {type(model).__name__}")
    depth = model.depth
    width = model.config["kwargs"]["width"]
    upsample = model.config["kwargs"]["upsample"]
    channels = model.channels
    size = _int("size", size, 2**depth)
    if size % 2**depth:
        raise ValueError(f"size must be a multiple of 2**depth = {2**depth}, got {size}")
    widths = [width * 2**level for level in range(depth + 1)]
    dx, dy, max_h = 1.0, 1.0, 1.0

    def box_height(level):
        return max_h * max(0.2, 1 / 2**level)         # the feature maps' side

    def box_width(level):
        return 0.22 + 0.08 * level                    # grows with the channels (doubling)

    fig, ax = plt.subplots(figsize=(min(9.0, 1.0 * (2 * depth + 3)), 0.95 * (depth + 1) + 1.0))
    centres = {}

    def draw_box(key, x, level, label, colour, w=None, side="below"):
        h, w = box_height(level), box_width(level) if w is None else w
        y = -level * dy
        ax.add_patch(Rectangle((x - w / 2, y - h / 2), w, h, facecolor=colour,
                               edgecolor="#333333", lw=1))
        # labels below and to the side away from the diagonal arrows
        if side == "above":
            ax.text(x, y + h / 2 + 0.05, label, ha="center", va="bottom", fontsize=7)
        else:
            tx, ha = {"below": (x, "center"), "left": (x - w / 2, "right"),
                      "right": (x + w / 2, "left")}[side]
            ax.text(tx, y - h / 2 - 0.05, label, ha=ha, va="top", fontsize=7)
        centres[key] = (x, y, h, w)

    def arrow(p, q, colour, dashed=False):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle="-|>", mutation_scale=9, color=colour,
                                     lw=1.2, ls="--" if dashed else "-", shrinkA=0, shrinkB=0))

    # input and encoder
    draw_box("in", 0.0, 0, f"input\n{channels} ch, {size}²", "#eeeeee", w=0.12, side="above")
    for level in range(depth + 1):
        side = size // 2**level
        x = dx * (level + 1)
        colour = "#9ecae1" if level < depth else "#fdd0a2"
        name = "bottleneck" if level == depth else "encoder"
        draw_box(("enc", level), x, level, f"{name}\n{widths[level]} ch, {side}²", colour,
                 side="below" if level == depth else "left")
    for level in range(depth - 1, -1, -1):
        side = size // 2**level
        x = dx * (2 * depth - level + 1)
        draw_box(("dec", level), x, level, f"decoder\n{widths[level]} ch, {side}²", "#a1d99b",
                 side="right")
    draw_box("out", dx * (2 * depth + 2), 0, f"output\n{channels} ch, {size}²", "#eeeeee",
             w=0.12, side="above")

    def right(key):
        x, y, _, w = centres[key]
        return (x + w / 2, y)

    def left(key):
        x, y, _, w = centres[key]
        return (x - w / 2, y)

    arrow(right("in"), left(("enc", 0)), "#1f77b4")
    for level in range(depth):
        x, y, h, w = centres[("enc", level)]
        x2, y2, _, w2 = centres[("enc", level + 1)]
        arrow((x, y - h / 2), (x2 - w2 / 2, y2), "#d62728")              # pooling, down
        xd, yd, hd, _ = centres[("dec", level)]
        src = ("enc", level + 1) if level == depth - 1 else ("dec", level + 1)
        xs, ys, _, ws = centres[src]
        arrow((xs + ws / 2, ys), (xd, yd - hd / 2), "#2ca02c")          # upsampling, up
        arrow(right(("enc", level)), left(("dec", level)), "#7f7f7f", dashed=True)
    arrow(right(("dec", 0)) if depth else right(("enc", 0)), left("out"), "#1f77b4")
    up_text = {"transpose": "2×2 transposed conv, stride 2",
               "nearest": "nearest ×2 + 3×3 conv", "bilinear": "bilinear ×2 + 3×3 conv"}[upsample]
    handles = [plt.Line2D([], [], color="#1f77b4", lw=1.5, label="block: 2 × (3×3 conv, "
                          + ("BN, " if model.config["kwargs"]["batch_norm"] else "") + "ReLU); "
                          "output: 1×1 conv"),
               plt.Line2D([], [], color="#d62728", lw=1.5, label="2×2 max pooling"),
               plt.Line2D([], [], color="#2ca02c", lw=1.5, label=up_text),
               plt.Line2D([], [], color="#7f7f7f", lw=1.5, ls="--",
                          label="skip: copy and concatenate")]
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False)
    ax.set_xlim(-0.45, dx * (2 * depth + 2) + 0.45)
    ax.set_ylim(-depth * dy - max_h / 2 - 0.45 - 0.5 * (depth < 3), max_h / 2 + 0.4)
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- Wiener
def set12_crop(index: int, top: int, left: int, size: int) -> np.ndarray:
    """A ``size x size`` crop of Set12 image ``index`` (0-based, file order), float64 in [0, 1]."""
    from .data import load_images

    images = load_images("set12")
    index = _int("index", index, 0)
    if index >= len(images):
        raise ValueError(f"index must be below {len(images)} (Set12 has {len(images)} images), "
                         f"got {index}")
    top, left, size = _int("top", top, 0), _int("left", left, 0), _int("size", size, 1)
    image = images[index]
    if top + size > image.shape[0] or left + size > image.shape[1]:
        raise ValueError(f"crop rows {top}:{top + size}, columns {left}:{left + size} leave "
                         f"image {index} of shape {image.shape}")
    return image[top:top + size, left:left + size].astype(np.float64)


def wiener_sweep(clean, kernel, noise_std: float, log_nsrs, seed: int = 0) -> dict:
    """Blur and add noise to an image, then Wiener-deconvolve it at several NSRs.

    The forward model is :func:`nnimaging.degrade.blur` (circular) plus white Gaussian noise
    of standard deviation ``noise_std``; each restoration is
    :func:`nnimaging.degrade.wiener_deconvolve` with ``nsr = 10**log_nsr``. All in float64.

    Parameters
    ----------
    clean : (H, W) float array, values in [0, 1]
    kernel : (kh, kw) float array, odd sizes, summing to 1
    noise_std : float >= 0
        Noise standard deviation for images in [0, 1] (0.01 is 2.55 on the 0..255 scale).
    log_nsrs : sequence of float
        Base-10 logarithms of the noise-to-signal ratios.
    seed : int
        Seed of ``numpy.random.default_rng`` for the noise.

    Returns
    -------
    dict with ``blurred`` (H, W) (the noisy observation), ``restored`` (n, H, W),
    ``log_nsr`` (n,), ``psnr`` (n,) of each restoration against ``clean`` and
    ``psnr_blurred``.
    """
    from .degrade import blur, wiener_deconvolve

    x = _image("clean", clean)
    noise_std = float(noise_std)
    if not math.isfinite(noise_std) or noise_std < 0:
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    log_nsrs = np.asarray(log_nsrs, dtype=np.float64).ravel()
    if log_nsrs.size == 0 or not np.all(np.isfinite(log_nsrs)):
        raise ValueError("log_nsrs must be a non-empty sequence of finite numbers")
    b = blur(x, kernel) + noise_std * np.random.default_rng(seed).standard_normal(x.shape)
    restored = np.stack([wiener_deconvolve(b, kernel, 10.0**e) for e in log_nsrs])
    return {"blurred": b, "restored": restored, "log_nsr": log_nsrs,
            "psnr": np.array([psnr(r, x) for r in restored]), "psnr_blurred": psnr(b, x)}


@register("encdec.wiener")
def wiener_demo(image: int = 0, top: int = 40, left: int = 80, size: int = 80,
                kernel: str = "motion:9:30", noise_std: float = 0.01, seed: int = 0,
                log_nsr_min: float = -5.0, log_nsr_max: float = -0.5,
                log_nsr_step: float = 0.25) -> Demo:
    """Wiener deconvolution of a blurred, noisy Set12 crop as the noise-to-signal ratio varies.

    Parameters
    ----------
    image, top, left, size
        The crop (:func:`set12_crop`).
    kernel : str
        Blur kernel spec (:func:`nnimaging.degrade.kernel_from_spec`), e.g. ``"motion:9:30"``.
    noise_std, seed
        As in :func:`wiener_sweep`.
    log_nsr_min, log_nsr_max, log_nsr_step : float
        Positions of the slider over ``log10(NSR)``.
    """
    from .degrade import kernel_from_spec

    slider = Slider("log_nsr", log_nsr_min, log_nsr_max, log_nsr_step,
                    log_nsr_min + log_nsr_step * round((log_nsr_max - log_nsr_min)
                                                       / log_nsr_step / 2),
                    label="log10 NSR", fmt=".2f")
    positions = np.array(slider.positions, dtype=float)
    clean = set12_crop(image, top, left, size)
    sweep = wiener_sweep(clean, kernel_from_spec(kernel), noise_std, positions, seed)
    curve = np.round(sweep["psnr"], 3)
    top_db = float(np.ceil(max(curve.max(), sweep["psnr_blurred"]) / 5) * 5 + 2)

    def compute(log_nsr):
        i = int(np.argmin(np.abs(positions - log_nsr)))
        return {"blurred": sweep["blurred"], "restored": sweep["restored"][i],
                "x": positions, "y": curve, "here_x": positions[i:i + 1],
                "here_y": curve[i:i + 1], "db": float(curve[i]),
                "blurred_db": float(round(sweep["psnr_blurred"], 3))}

    return Demo(
        name="encdec.wiener",
        title="Wiener deconvolution: the noise-to-signal ratio",
        controls=[slider],
        compute=compute,
        panels=[Panel([Image("blurred", 0.0, 1.0)], title="blurred + noise ({blurred_db:.2f} dB)",
                      axes=False),
                Panel([Image("restored", 0.0, 1.0)], title="Wiener estimate ({db:.2f} dB)",
                      axes=False),
                Panel([Line("x", "y"), Points("here_x", "here_y", size=8, color="#d62728")],
                      title="PSNR of the estimate", xlabel="log10 NSR", ylabel="PSNR (dB)",
                      xlim=(log_nsr_min - 0.2, log_nsr_max + 0.2), ylim=(0.0, top_db))],
        alt=(f"Three panels. Left: a {size} by {size} crop of a Set12 photograph, blurred "
             "and with a little noise added. Middle: its Wiener deconvolution at the noise-to-"
             "signal ratio set by the slider; at very small ratios the estimate is buried in "
             "amplified, high-frequency noise, at large ratios it stays blurry, and in between "
             "it is sharper than the input. Right: PSNR of the estimate against log10 of the "
             "ratio, a curve with a single maximum, with a red marker at the current ratio."),
        ncols=3, height=260,
        args={"image": image, "top": top, "left": left, "size": size, "kernel": kernel,
              "noise_std": noise_std, "seed": seed, "log_nsr_min": log_nsr_min,
              "log_nsr_max": log_nsr_max, "log_nsr_step": log_nsr_step},
    )


# ----------------------------------------------------------------------------- deep image prior
def deep_image_prior(noisy, clean=None, steps: int = 2000, depth: int = 3, width: int = 16,
                     lr: float = 0.01, upsample: str = "bilinear", input_scale: float = 0.1,
                     input_noise: float = 0.0, seed: int = 0, snapshot_every: int = 100,
                     device="cpu", progress: bool = False, dtype=torch.float64) -> dict:
    """Deep image prior (Ulyanov et al., 2018): fit a random U-Net to one noisy image.

    A :class:`~nnimaging.models.UNet` (``residual=False``, batch norm) with random weights
    maps a fixed random code ``z`` (uniform in ``[0, input_scale)``, the image's size) to an
    image; Adam changes the weights, never ``z``, to minimise the mean squared difference to
    the noisy image. Nothing is learned from other images: the network's structure is the
    only prior. The fit reproduces the image's content before its noise, so the output is
    cleanest after some iterations and gets noisier as the network starts fitting the noise;
    stopping early is the method.

    Parameters
    ----------
    noisy : (H, W) float array, values around [0, 1]
        The only observation.
    clean : (H, W) float array, optional
        Ground truth for the PSNR curve (not used for fitting).
    steps : int >= 0
        Number of Adam updates.
    depth, width, upsample
        U-Net settings (``UNet(depth, width, upsample=...)``).
    lr : float > 0
        Adam learning rate.
    input_scale : float > 0
        Range of the uniform random code.
    input_noise : float >= 0
        Standard deviation of a fresh Gaussian perturbation added to the code at every
        iteration (the paper uses 1/30 for denoising): it slows down the fitting of the noise
        and raises the best PSNR. The outputs recorded are those of the perturbed code.
    seed : int
        Seed of the weights and the code (results reproduce on the same device and software).
    snapshot_every : int >= 1
        Keep the output after every ``snapshot_every`` updates (and after the last one).
    device : str or torch.device
        ``"cpu"`` or e.g. ``"cuda"``: longer runs are just bigger arguments on a GPU.
    progress : bool
        Print loss (and PSNR) at every snapshot.
    dtype : torch.dtype
        Precision of the fit; float64 by default, as in :func:`train_autoencoder`: hundreds of
        updates amplify float32's processor-dependent rounding into visible differences.

    Returns
    -------
    dict
        ``"loss"``: (steps + 1,) float64 array, ``loss[t]`` the MSE to ``noisy`` after ``t``
        updates; ``"psnr"``: (steps + 1,) float64 array of the PSNR (dB) of the output,
        clipped to [0, 1], against ``clean`` after ``t`` updates (``None`` without
        ``clean``); ``"snapshots"``: {t: (H, W) float32 output clipped to [0, 1]} for
        ``t = 0, snapshot_every, 2 snapshot_every, ...`` and ``t = steps``;
        ``"best_iteration"``: argmax of ``psnr`` (``None`` without ``clean``);
        ``"best_psnr"``; ``"settings"``: the arguments, for a results file.
    """
    from .models import UNet

    y = _image("noisy", noisy)
    x = None if clean is None else _image("clean", clean)
    if x is not None and x.shape != y.shape:
        raise ValueError(f"clean must have the shape of noisy {y.shape}, got {x.shape}")
    steps = _int("steps", steps, 0)
    snapshot_every = _int("snapshot_every", snapshot_every, 1)
    lr, input_scale = _positive("lr", lr), _positive("input_scale", input_scale)
    input_noise = float(input_noise)
    if not math.isfinite(input_noise) or input_noise < 0:
        raise ValueError(f"input_noise must be a finite number >= 0, got {input_noise!r}")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(depth=depth, width=width, channels=1, upsample=upsample, batch_norm=True,
                   residual=False)
    gen = torch.Generator().manual_seed(seed)
    z = (torch.rand(1, 1, *y.shape, generator=gen) * input_scale).to(device=device, dtype=dtype)
    net = net.to(device=device, dtype=dtype).train()
    target = torch.from_numpy(y.astype(np.float32))[None, None].to(device=device, dtype=dtype)
    reference = (None if x is None
                 else torch.from_numpy(x.astype(np.float32))[None, None].to(device=device, dtype=dtype))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    losses, errors, snapshots = [], [], {}
    for t in range(steps + 1):
        if input_noise > 0:
            out = net(z + input_noise * torch.randn(z.shape, generator=gen).to(device=device, dtype=dtype))
        else:
            out = net(z)
        loss = F.mse_loss(out, target)
        estimate = out.detach().clamp(0, 1)
        losses.append(loss.detach())
        if reference is not None:
            errors.append(F.mse_loss(estimate, reference))
        if t % snapshot_every == 0 or t == steps:
            snapshots[t] = estimate[0, 0].cpu().float().numpy()
            if progress:
                extra = ("" if reference is None
                         else f"  PSNR {10 * math.log10(1 / errors[-1].item()):.2f} dB")
                print(f"iteration {t:5d}  loss {loss.item():.6f}{extra}", flush=True)
        if t == steps:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    loss_curve = torch.stack(losses).double().cpu().numpy()
    psnr_curve = best = best_psnr = None
    if reference is not None:
        mse = torch.stack(errors).double().cpu().numpy()
        psnr_curve = 10 * np.log10(1.0 / np.maximum(mse, 1e-20))
        best = int(np.argmax(psnr_curve))
        best_psnr = float(psnr_curve[best])
    settings = {"steps": steps, "depth": depth, "width": width, "lr": lr, "upsample": upsample,
                "input_scale": input_scale, "input_noise": input_noise, "seed": seed,
                "snapshot_every": snapshot_every, "device": str(device)}
    return {"loss": loss_curve, "psnr": psnr_curve, "snapshots": snapshots,
            "best_iteration": best, "best_psnr": best_psnr, "settings": settings}


def deep_image_prior_example(image: int = 1, top: int = 64, left: int = 96, size: int = 32,
                             sigma: float = 25.0, noise_seed: int = 0, steps: int = 20,
                             snapshot_every: int = 5, depth: int = 2, width: int = 8,
                             lr: float = 0.01, seed: int = 0) -> dict:
    """A Set12 crop, its noisy version and :func:`deep_image_prior` fitted to it (remembered).

    ``clean = set12_crop(image, top, left, size)``, ``noisy = add_gaussian_noise(clean,
    sigma, noise_seed)``, then ``deep_image_prior(noisy, clean, steps=..., ...)``. The result
    is remembered for the same settings, so the demo :func:`deep_image_prior_demo` and the
    chapter share one fit; do not modify it. The defaults are a quick preview; the chapter
    passes its own settings.

    Returns
    -------
    dict with ``clean``, ``noisy`` ((size, size) float64 arrays) and ``run`` (the dict of
    :func:`deep_image_prior`).
    """
    return _deep_image_prior_example(
        _int("image", image), _int("top", top), _int("left", left), _int("size", size, 1),
        float(sigma), int(noise_seed), _int("steps", steps),
        _int("snapshot_every", snapshot_every, 1), _int("depth", depth, 1), _int("width", width, 1),
        float(lr), int(seed))


@functools.lru_cache(maxsize=2)
def _deep_image_prior_example(image, top, left, size, sigma, noise_seed, steps, snapshot_every,
                              depth, width, lr, seed) -> dict:
    from .degrade import add_gaussian_noise

    clean = set12_crop(image, top, left, size)
    noisy = add_gaussian_noise(clean, sigma, seed=noise_seed).astype(np.float64)
    run = deep_image_prior(noisy, clean, steps=steps, depth=depth, width=width, lr=lr,
                           seed=seed, snapshot_every=snapshot_every)
    return {"clean": clean, "noisy": noisy, "run": run}


@register("encdec.deep_image_prior")
def deep_image_prior_demo(image: int = 1, top: int = 64, left: int = 96, size: int = 32,
                          sigma: float = 25.0, noise_seed: int = 0, steps: int = 20,
                          snapshot_every: int = 5, depth: int = 2, width: int = 8,
                          lr: float = 0.01, seed: int = 0, curve_every: int = 5) -> Demo:
    """Step through a deep-image-prior fit: the output at each snapshot and the PSNR curve.

    Arguments as in :func:`deep_image_prior_example` (whose remembered result it shows);
    ``steps`` must be a multiple of ``snapshot_every``. ``curve_every`` thins the PSNR
    curve stored with every frame.
    """
    steps, snapshot_every = _int("steps", steps, 1), _int("snapshot_every", snapshot_every, 1)
    curve_every = _int("curve_every", curve_every, 1)
    if steps % snapshot_every:
        raise ValueError(f"steps ({steps}) must be a multiple of snapshot_every "
                         f"({snapshot_every}) so that every slider position has a snapshot")
    ex = deep_image_prior_example(image, top, left, size, sigma, noise_seed, steps,
                                  snapshot_every, depth, width, lr, seed)
    run = ex["run"]
    iters = np.arange(0, steps + 1, curve_every)
    curve = np.round(run["psnr"][iters], 3)
    noisy_db = round(psnr(ex["noisy"], ex["clean"]), 3)
    best = run["best_iteration"]

    def compute(iteration):
        t = int(iteration)
        return {"noisy": ex["noisy"], "clean": ex["clean"], "output": run["snapshots"][t],
                "t": iters.astype(float), "curve": curve, "now": float(t),
                "db": float(round(run["psnr"][t], 3)), "noisy_db": noisy_db}

    top_db = float(np.ceil(max(curve.max(), noisy_db) / 5) * 5 + 2)
    return Demo(
        name="encdec.deep_image_prior",
        title="Deep image prior: a random U-Net fitted to one noisy image",
        controls=[Slider("iteration", 0, steps, snapshot_every,
                         snapshot_every * round(best / snapshot_every), label="iteration",
                         fmt="d")],
        compute=compute,
        panels=[Panel([Image("noisy", 0.0, 1.0)], title="noisy ({noisy_db:.2f} dB)", axes=False),
                Panel([Image("clean", 0.0, 1.0)], title="clean (not used)", axes=False),
                Panel([Image("output", 0.0, 1.0)], title="output ({db:.2f} dB)", axes=False),
                Panel([Line("t", "curve"), VLine("now", color="#d62728")],
                      title="PSNR (dB) to clean", xlabel="iteration",
                      xlim=(0.0, float(steps)), ylim=(5.0, top_db))],
        alt=("Four panels: a noisy crop of a Set12 photograph, the clean crop, the output of a "
             "randomly initialised U-Net after the number of fitting iterations chosen with "
             "the slider, and the PSNR of that output against the clean crop over the "
             "iterations, with a red line at the chosen iteration. The output starts as a "
             "smooth blob, becomes a clean version of the image, and later reproduces the "
             "noise as well: the PSNR rises to a peak and then falls."),
        ncols=4, height=230,
        args={"image": image, "top": top, "left": left, "size": size, "sigma": sigma,
              "noise_seed": noise_seed, "steps": steps, "snapshot_every": snapshot_every,
              "depth": depth, "width": width, "lr": lr, "seed": seed,
              "curve_every": curve_every},
    )


# ----------------------------------------------------------------------------- figures
def plot_code_space(codes, labels, decoded, extent):
    """Left: 2-D codes of digits coloured by class; right: images decoded from a grid of codes.

    Parameters
    ----------
    codes : (N, 2) array
        Codes ``encode(x)`` of digits.
    labels : (N,) int array
        Their classes 0..9 (for the colours only).
    decoded : (n * 28 + gaps, n * 28 + gaps) array
        The decoded grid, tiled (:func:`tile`), first row at the top.
    extent : (z1_min, z1_max, z2_min, z2_max)
        Range of the code grid, drawn as a dashed box on the left.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    codes = np.asarray(codes, dtype=float)
    labels = np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] != 2 or labels.shape != codes.shape[:1]:
        raise ValueError(f"codes must have shape (N, 2) and labels (N,), got {codes.shape} and "
                         f"{labels.shape}")
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.0, 4.2))
    cmap = plt.get_cmap("tab10")
    for digit in range(10):
        sel = labels == digit
        ax.scatter(codes[sel, 0], codes[sel, 1], s=4, color=cmap(digit), label=str(digit),
                   rasterized=True)
    x0, x1, y0, y1 = extent
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ls="--", color="#444444"))
    ax.set_xlabel("code $z_1$")
    ax.set_ylabel("code $z_2$")
    ax.legend(markerscale=3, fontsize=7, ncol=2, loc="best", title="digit", title_fontsize=7)
    bx.imshow(decoded, vmin=0, vmax=1, extent=(x0, x1, y0, y1), aspect="auto")
    bx.set_xlabel("code $z_1$")
    bx.set_ylabel("code $z_2$")
    bx.grid(False)
    bx.set_title("decoded from a grid of codes", fontsize=9)
    fig.tight_layout()
    return fig


def plot_error_histograms(groups: dict, threshold: float | None = None, bins: int = 40):
    """Histograms of reconstruction errors per group on a logarithmic axis, and a threshold.

    Parameters
    ----------
    groups : dict of name -> (n,) array of positive errors
    threshold : float, optional
        Drawn as a vertical dashed line.
    """
    import matplotlib.pyplot as plt

    values = {k: np.asarray(v, dtype=float).ravel() for k, v in groups.items()}
    everything = np.concatenate(list(values.values()))
    if everything.size == 0 or everything.min() <= 0:
        raise ValueError("errors must be positive numbers (the axis is logarithmic)")
    edges = np.logspace(np.log10(everything.min()) - 0.05, np.log10(everything.max()) + 0.05,
                        bins + 1)
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for name, v in values.items():
        ax.hist(v, bins=edges, density=False, weights=np.full(v.shape, 1 / v.size),
                histtype="stepfilled", alpha=0.45, label=f"{name} ({v.size})")
    if threshold is not None:
        ax.axvline(threshold, color="#444444", ls="--", lw=1.2, label="threshold")
    ax.set_xscale("log")
    ax.set_xlabel("reconstruction error (MSE per image, log scale)")
    ax.set_ylabel("share of the group")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_roc(curves: dict):
    """ROC curves: ``curves`` maps a name to ``(fpr, tpr, auc)``; the diagonal is chance."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.8, 3.6))
    for name, (fpr, tpr, auc) in curves.items():
        ax.plot(fpr, tpr, lw=1.8, label=f"{name} (AUC {auc:.3f})", drawstyle="steps-post")
    ax.plot([0, 1], [0, 1], color="#999999", ls=":", lw=1)
    ax.set_xlabel("false positive rate (digits flagged)")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_dip_curves(run: dict, noise_variance: float, marks: dict | None = None):
    """PSNR against the clean image and loss against the noisy one, per iteration.

    Parameters
    ----------
    run : dict
        A result of :func:`deep_image_prior` with a PSNR curve.
    noise_variance : float
        Drawn as a horizontal line on the loss panel (the MSE of the clean image to the noisy
        one, in expectation).
    marks : dict of label -> iteration, optional
        Iterations marked on both panels.
    """
    import matplotlib.pyplot as plt

    if run.get("psnr") is None:
        raise ValueError("run has no PSNR curve: call deep_image_prior with a clean image")
    t = np.arange(len(run["loss"]))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.0, 3.2))
    ax.plot(t, run["psnr"], lw=1.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR to the clean image (dB)")
    bx.semilogy(t, run["loss"], lw=1.5)
    bx.axhline(noise_variance, color="#444444", ls="--", lw=1.2, label="noise variance σ²")
    bx.set_xlabel("iteration")
    bx.set_ylabel("loss: MSE to the noisy image")
    for (label, it), colour in zip((marks or {}).items(), ["#d62728", "#2ca02c", "#9467bd"]):
        ax.plot(it, run["psnr"][it], "o", color=colour, label=f"{label} ({it})")
        bx.plot(it, run["loss"][it], "o", color=colour)
    ax.legend(fontsize=8, loc="lower right")
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig
