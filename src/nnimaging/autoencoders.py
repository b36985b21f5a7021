"""Autoencoders on MNIST (chapter 6): training, reconstructions and the size of the code.

:func:`train_autoencoder` is the training loop of the chapter in a function;
:func:`reconstruct` and :func:`reconstruction_errors` apply a trained model;
:func:`latent_sweep` trains one autoencoder per code size (remembered, so the demo
:func:`latent_size_demo` and the chapter share the run); :func:`tile` lays digits out in a grid
and :func:`plot_code_space` draws a two-number code space. Anomaly detection by reconstruction
error is :mod:`nnimaging.anomaly`; the variational autoencoder is :mod:`nnimaging.vae`.

The demo is a precomputed-frame demo (no JavaScript twin): its factory takes JSON arguments that
fully define what it shows; the training runs when the factory is called and is remembered
(``functools.lru_cache``). The defaults are small, quick settings; the chapter passes its own.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle

from ._checks import positive_int as _int, positive_number as _positive, to_numpy
from .data import load_mnist
from .demo import Choice, Demo, Image, Line, Panel, Points, Text, register
from .models import ConvAutoencoder

__all__ = [
    "train_autoencoder", "reconstruct", "reconstruction_errors", "latent_sweep",
    "latent_size_demo", "tile", "plot_code_space", "MNIST_SIZE",
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
