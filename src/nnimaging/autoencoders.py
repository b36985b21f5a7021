"""Autoencoders and generative models (chapter 6).

The helpers of the chapter, by section:

* autoencoders on MNIST: :func:`train_autoencoder` (the training loop of the chapter in a
  function), :func:`reconstruct`, :func:`reconstruction_errors` and :func:`latent_sweep`
  (one autoencoder per code size, remembered for the demo :func:`latent_size_demo`);
* anomaly detection by reconstruction error: :func:`roc_curve`, :func:`roc_auc` (the
  Mann-Whitney statistic, no scikit-learn), and images the digit model never saw:
  :func:`image_patches` (crops of natural images) and :func:`draw_letters`;
* variational autoencoders: :func:`gaussian_kl` (the KL term of the ELBO in closed form),
  :class:`VAE` (Kingma and Welling's fully connected model), :func:`train_vae` (the ELBO, or
  a plain autoencoder of the same shape for comparison), :func:`decode`, :func:`encode_mean`,
  :func:`edge_energy` (how sharp reconstructions are) and the demo :func:`vae_code_demo`
  (decode any point of the code space).

The demos are precomputed-frame demos (no JavaScript twin): their factories take JSON
arguments that fully define what they show; the expensive part (training) runs when the
factory is called and is remembered (``functools.lru_cache``) so that a chapter can print
numbers from the same run that the demo shows without computing it twice. The factories'
defaults are small, quick settings; the chapter passes its own.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Rectangle
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D
import torch.nn.functional as F
from torch import nn

from ._checks import float_image as _image, positive_int as _int, positive_number as _positive, to_numpy
from .data import load_mnist
from .demo import Choice, Demo, Image, Line, Panel, Points, Slider, Text, register
from .models import ConvAutoencoder

__all__ = [
    "train_autoencoder", "reconstruct", "reconstruction_errors", "latent_sweep",
    "latent_size_demo", "tile", "roc_curve", "roc_auc", "image_patches", "draw_letters",
    "gaussian_kl", "VAE", "train_vae", "vae_sweep", "encode_mean", "decode", "edge_energy",
    "vae_code_demo", "plot_code_space", "plot_error_histograms", "plot_roc", "MNIST_SIZE",
]

MNIST_SIZE = 28
"""Height and width of an MNIST digit."""


# ----------------------------------------------------------------------------- checks
def _digits(images, name: str = "images") -> torch.Tensor:
    """``(N, 28, 28)`` float images in [0, 1] (array or tensor) as an ``(N, 1, 28, 28)`` tensor."""
    arr = to_numpy(images)
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


@register
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
    mu, logvar = to_numpy(mu, np.float64), to_numpy(logvar, np.float64)
    if mu.shape != logvar.shape or mu.ndim == 0:
        raise ValueError(f"mu and logvar must be arrays of the same shape (..., d), got "
                         f"{mu.shape} and {logvar.shape}")
    kl = 0.5 * (mu**2 + np.exp(logvar) - logvar - 1.0).sum(axis=-1)
    return float(kl) if kl.ndim == 0 else kl


class VAE(nn.Module):
    """Kingma and Welling's variational autoencoder for 28 x 28 digits, fully connected.

    Encoder: ``784 -> hidden`` (ReLU), then two linear heads giving the mean ``mu`` and the
    log-variance ``logvar`` of ``q(z | x) = N(mu, diag(exp(logvar)))``. Decoder:
    ``latent -> hidden`` (ReLU) ``-> 784`` logits of Bernoulli pixel probabilities.

    With ``variational=False`` the same network is a plain autoencoder: the code is ``mu``
    itself (``logvar`` is ignored and there is no KL term), which is what
    :func:`train_vae` compares the VAE with.

    Parameters
    ----------
    latent : int >= 1
        Code size.
    hidden : int >= 1
        Units of the hidden layer of the encoder and of the decoder.
    variational : bool
        Sample the code during training and add the KL term (a VAE), or not (an autoencoder).
    """

    def __init__(self, latent: int = 2, hidden: int = 256, variational: bool = True):
        super().__init__()
        latent, hidden = _int("latent", latent, 1), _int("hidden", hidden, 1)
        pixels = MNIST_SIZE * MNIST_SIZE
        self.latent, self.hidden, self.variational = latent, hidden, bool(variational)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(pixels, hidden), nn.ReLU())
        self.to_mu, self.to_logvar = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
        self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, pixels))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)``, each ``(N, latent)``, of digits ``x`` of shape (N, 1, 28, 28)."""
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits ``(N, 1, 28, 28)`` of codes ``z`` of shape (N, latent)."""
        return self.decoder(z).view(-1, 1, MNIST_SIZE, MNIST_SIZE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction (pixel probabilities) from the mean code: no sampling."""
        return torch.sigmoid(self.decode_logits(self.encode(x)[0]))


def train_vae(images, latent: int = 2, hidden: int = 256, epochs: int = 20, batch_size: int = 100,
              lr: float = 1e-3, variational: bool = True, seed: int = 0, dtype=torch.float64):
    """Train a :class:`VAE` by maximising the ELBO (or, with ``variational=False``, an autoencoder).

    Per image the loss is the negative ELBO with a Bernoulli decoder,
    ``sum_pixels BCE(decode(z), x) + KL(q(z|x) || N(0, I))`` with the reparameterised sample
    ``z = mu + exp(logvar / 2) * eps``; Adam steps on its batch mean. With
    ``variational=False`` the code is ``z = mu`` and the KL term is dropped: the same network
    and loss trained as a plain autoencoder. Deterministic for a given ``seed`` (weights,
    shuffling and the samples ``eps`` come from local generators); float64 by default so that
    the result is the same on every processor (see :func:`train_autoencoder`).

    Parameters
    ----------
    images : (N, 28, 28) float array or tensor, values in [0, 1]
    latent, hidden, variational
        As in :class:`VAE`.
    epochs, batch_size : int >= 1
    lr : float > 0
        Adam learning rate.
    seed : int
    dtype : torch.dtype

    Returns
    -------
    model : VAE
        In evaluation mode.
    history : dict of (epochs,) float64 arrays
        ``"loss"`` (negative ELBO per image, in nats), ``"reconstruction"`` and ``"kl"``: the
        epoch means of the two terms.
    """
    x = _digits(images).to(dtype)
    if len(x) == 0:
        raise ValueError("need at least one training image, got 0")
    epochs, batch_size = _int("epochs", epochs, 1), _int("batch_size", batch_size, 1)
    lr = _positive("lr", lr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VAE(latent, hidden, variational)
    model = model.to(dtype).train()
    gen = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = {"loss": [], "reconstruction": [], "kl": []}
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        sums = torch.zeros(2, dtype=torch.float64)
        for start in range(0, len(x), batch_size):
            batch = x[perm[start:start + batch_size]]
            mu, logvar = model.encode(batch)
            if model.variational:
                eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype)
                z = mu + torch.exp(0.5 * logvar) * eps
                kl = 0.5 * (mu**2 + logvar.exp() - logvar - 1).sum(dim=1)
            else:
                z, kl = mu, torch.zeros(len(batch), dtype=mu.dtype)
            rec = F.binary_cross_entropy_with_logits(model.decode_logits(z), batch,
                                                     reduction="none").sum(dim=(1, 2, 3))
            loss = (rec + kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            sums += torch.stack([rec.detach().sum(), kl.detach().sum()]).double()
        rec_mean, kl_mean = (sums / len(x)).tolist()
        history["reconstruction"].append(rec_mean)
        history["kl"].append(kl_mean)
        history["loss"].append(rec_mean + kl_mean)
    return model.eval(), {k: np.array(v) for k, v in history.items()}


def vae_sweep(variational=(True,), latent: int = 2, hidden: int = 256, epochs: int = 20,
              n_train: int = 8000, seed: int = 0) -> dict:
    """Train :func:`train_vae` on MNIST "train" for each value of ``variational``; remembered.

    Returns ``{variational: {"model", "history", "heldout": {"mse", "edge_energy"}}}``, the
    held-out scores of reconstructions from the mean code (see :func:`edge_energy`). The
    chapter and :func:`vae_code_demo` share the run; do not modify the returned models.
    """
    flags = tuple(bool(v) for v in variational)
    if not flags:
        raise ValueError("variational must list at least one of True, False")
    return _vae_sweep(flags, _int("latent", latent, 1), _int("hidden", hidden, 1),
                      _int("epochs", epochs, 1), _int("n_train", n_train, 1), int(seed))


@functools.lru_cache(maxsize=4)
def _vae_sweep(flags: tuple, latent: int, hidden: int, epochs: int, n_train: int, seed: int) -> dict:
    train, _ = load_mnist("train")
    heldout, _ = load_mnist("heldout")
    out = {}
    for flag in flags:
        model, history = train_vae(train[:n_train], latent, hidden, epochs, variational=flag, seed=seed)
        recon = reconstruct(model, heldout)
        out[flag] = {"model": model, "history": history,
                     "heldout": {"mse": float(((recon - heldout.astype(np.float64)) ** 2).mean()),
                                 "edge_energy": float(edge_energy(recon).mean()),
                                 "edge_energy_input": float(edge_energy(heldout).mean())}}
    return out


def encode_mean(model: VAE, images) -> np.ndarray:
    """The mean codes ``mu`` of digits, an ``(N, latent)`` float64 array."""
    x = _digits(images).to(next(model.parameters()).dtype)
    with torch.no_grad():
        return model.encode(x)[0].double().numpy()


def decode(model: VAE, codes) -> np.ndarray:
    """Pixel probabilities ``(N, 28, 28)`` decoded from codes of shape ``(N, latent)``."""
    z = np.asarray(codes, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != model.latent:
        raise ValueError(f"codes must have shape (N, {model.latent}), got {z.shape}")
    with torch.no_grad():
        out = torch.sigmoid(model.decode_logits(torch.from_numpy(z).to(next(model.parameters()).dtype)))
    return out[:, 0].double().numpy()


def edge_energy(images) -> np.ndarray:
    """How sharp images are: the mean absolute difference between neighbouring pixels.

    ``mean(|x[i+1, j] - x[i, j]|) / 2 + mean(|x[i, j+1] - x[i, j]|) / 2`` per image. A blurred
    image has smaller differences than a sharp one with the same content, so the ratio of a
    reconstruction's edge energy to its input's measures blur.

    Parameters
    ----------
    images : (N, H, W) or (H, W) float array

    Returns
    -------
    (N,) float64 array (a float for one image).
    """
    arr = to_numpy(images, np.float64)
    if arr.ndim not in (2, 3) or min(arr.shape[-2:]) < 2:
        raise ValueError(f"images must have shape (N, H, W) or (H, W) with H, W >= 2, got {arr.shape}")
    energy = (np.abs(np.diff(arr, axis=-2)).mean(axis=(-2, -1))
              + np.abs(np.diff(arr, axis=-1)).mean(axis=(-2, -1))) / 2
    return float(energy) if arr.ndim == 2 else energy


@register
def vae_code_demo(hidden: int = 256, epochs: int = 2, n_train: int = 2000, seed: int = 0,
                  limit: float = 2.5, step: float = 0.5) -> Demo:
    """Decode any point of a 2-D VAE's code space: two sliders for ``z = (z1, z2)``.

    Trains (or reuses, see :func:`vae_sweep`) a VAE with a code of 2 numbers. The left panel
    is the digit decoded from the code set by the sliders; the right panel marks the code
    among the mean codes of the ten digit classes (held-out digits). The defaults are a quick
    preview; the chapter passes its own settings.
    """
    run = vae_sweep((True,), 2, hidden, epochs, n_train, seed)[True]
    model = run["model"]
    heldout, labels = load_mnist("heldout")
    codes = encode_mean(model, heldout)
    centres = np.round([codes[labels == d].mean(axis=0) for d in range(10)], 3)
    limit, step = _positive("limit", limit), _positive("step", step)
    sliders = [Slider(name, -limit, limit, step, 0.0, label=name, fmt=".1f") for name in ("z1", "z2")]

    def compute(z1, z2):
        picture = decode(model, [[z1, z2]])[0]
        return {"digit": picture, "cx": centres[:, 0], "cy": centres[:, 1],
                "here_x": np.array([z1]), "here_y": np.array([z2])}

    return Demo(
        title="A VAE's code space: decode any code",
        controls=sliders,
        compute=compute,
        panels=[Panel([Image("digit", 0.0, 1.0)], title="decoded from z = ({z1:.1f}, {z2:.1f})",
                      axes=False),
                Panel([Points("cx", "cy", size=5, color="#1f77b4"),
                       Points("here_x", "here_y", size=8, color="#d62728")],
                      title="code space", xlabel="z1", ylabel="z2",
                      xlim=(-limit - 0.3, limit + 0.3), ylim=(-limit - 0.3, limit + 0.3))],
        alt=("Two panels. Left: the 28 by 28 digit that a variational autoencoder with a code of "
             "two numbers decodes from the code chosen with the two sliders. Right: the code "
             "space, with a grey circle of radius 2 around the origin (where the prior puts "
             "most of its mass), blue dots at the mean codes of the ten digit classes and a red "
             "dot at the chosen code. Moving the code between the blue dots morphs one digit "
             "smoothly into another."),
        ncols=2, height=260,
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
