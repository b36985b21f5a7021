"""Variational autoencoders (chapter 6): Kingma and Welling's VAE trained on MNIST.

:func:`gaussian_kl` is the KL term of the ELBO in closed form; :class:`VAE` the fully connected
model; :func:`train_vae` its training loop (the negative ELBO, or the same network trained as a
plain autoencoder for comparison); :func:`vae_sweep` trains on MNIST and remembers the result;
:func:`encode_mean` and :func:`decode` map between digits and codes; :func:`edge_energy`
measures how sharp images are; the demo :func:`code_space_demo` decodes any point of a 2-D code
space (precomputed frames, like the demos of :mod:`nnimaging.autoencoders`).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ._checks import positive_int as _int, positive_number as _positive, to_numpy
from .autoencoders import MNIST_SIZE, _digits, reconstruct
from .data import load_mnist
from .demo import Demo, Image, Panel, Points, Slider, register

__all__ = ["gaussian_kl", "VAE", "train_vae", "vae_sweep", "encode_mean", "decode", "edge_energy",
           "code_space_demo"]


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
    the result is the same on every processor (see :func:`nnimaging.autoencoders.train_autoencoder`).

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
    chapter and :func:`code_space_demo` share the run; do not modify the returned models.
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
    input_edges = float(edge_energy(heldout).mean())   # the same for every model
    out = {}
    for flag in flags:
        model, history = train_vae(train[:n_train], latent, hidden, epochs, variational=flag, seed=seed)
        recon = reconstruct(model, heldout)                 # once, for both scores
        out[flag] = {"model": model, "history": history,
                     "heldout": {"mse": float(((recon - heldout.astype(np.float64)) ** 2).mean()),
                                 "edge_energy": float(edge_energy(recon).mean()),
                                 "edge_energy_input": input_edges}}
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
def code_space_demo(hidden: int = 256, epochs: int = 2, n_train: int = 2000, seed: int = 0,
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
