"""Denoising networks of the book (DnCNN and U-Net) and their pretrained weights.

Every model here follows one call convention: it takes a batch of noisy grayscale
images, an ``(N, 1, H, W)`` float32 tensor with values around [0, 1] (noisy inputs are
not clipped, so they leave that range a little), and returns the **denoised images**
with the same shape. Residual models predict the noise and subtract it inside
``forward``; :meth:`Denoiser.estimate_noise` exposes that prediction.

Pretrained weights live in ``src/nnimaging/weights/`` (``manifest.json`` plus one
``NAME.pt`` file per model, a ``torch.save``-d state dict). :func:`available` lists
them with their training settings; :func:`load_pretrained` verifies the file's SHA-256
against the manifest, checks that the state dict fits the architecture, and returns the
model in eval mode on the CPU. :func:`save_pretrained` writes both (the training CLI
``python -m nnimaging.train ... --export NAME`` calls it).

References
----------
K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual
Learning of Deep CNN for Image Denoising", IEEE Trans. Image Processing 26(7), 2017.

O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI 2015.

:class:`ConvAutoencoder` is not a denoiser: it compresses 28 x 28 MNIST digits to a small
latent vector and decodes them back (``encode``, ``decode``, ``forward``), for the
chapter on learned image representations. It is not in :data:`ARCHITECTURES`.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks

__all__ = [
    "ConvAutoencoder",
    "Denoiser",
    "DnCNN",
    "UNet",
    "ARCHITECTURES",
    "build_model",
    "check_images",
    "count_parameters",
    "available",
    "load_pretrained",
    "save_pretrained",
    "install_weights",
    "check_state_dict",
    "sha256_file",
    "WeightsNotFoundError",
    "WEIGHTS_DIR",
    "RECIPES",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""Directory of the shipped weights and their ``manifest.json``."""

MANIFEST_NAME = "manifest.json"

RECIPES = {
    "dncnn-s25": "python -m nnimaging.train dncnn --sigma 25 --out runs/dncnn-s25 --export dncnn-s25",
    "dncnn-b": "python -m nnimaging.train dncnn --depth 20 --sigma-range 0 55 --out runs/dncnn-b --export dncnn-b",
    "unet-denoise": (
        "python -m nnimaging.train unet --sigma-range 0 55 --patch-size 64 --batch-size 64 "
        "--out runs/unet-denoise --export unet-denoise"
    ),
    "unet-deblur": (
        "python -m nnimaging.train unet --width 16 --blur motion:9:30 --sigma-range 1 6 --patch-size 64 "
        "--batch-size 64 --out runs/unet-deblur --export unet-deblur"
    ),
    "unet-wiener": (
        "python -m nnimaging.train unet --width 16 --blur motion:9:30 --wiener-nsr 0.01 --sigma-range 1 6 "
        "--patch-size 64 --batch-size 64 --out runs/unet-wiener --export unet-wiener"
    ),
}
"""The full-length command that trains and exports each shipped model (the paper's 80,000 steps;
on a GPU). The weights shipped now come from shorter CPU runs; each manifest entry records the
command that actually made it."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ----------------------------------------------------------------------------------------
# input checks and the common base class
# ----------------------------------------------------------------------------------------


def check_images(x, channels: int = 1, dtype=torch.float32) -> torch.Tensor:
    """Check that ``x`` is an ``(N, channels, H, W)`` tensor of ``dtype`` and return it.

    ``dtype`` is the model's: float32, or float64 for a model converted with ``.double()``.

    Raises
    ------
    TypeError
        ``x`` is not a tensor, or its dtype is not ``dtype``.
    ValueError
        ``x`` does not have 4 dimensions or has the wrong number of channels.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"expected a torch.Tensor of shape (N, {channels}, H, W) and dtype float32, got "
            f"{type(x).__module__}.{type(x).__name__}; for an (H, W) numpy image use "
            "torch.from_numpy(image).float()[None, None]"
        )
    if x.ndim != 4:
        hint = "; add batch and channel axes with x[None, None]" if x.ndim == 2 else ""
        raise ValueError(f"expected a tensor of shape (N, {channels}, H, W), got shape {tuple(x.shape)}{hint}")
    if x.shape[1] != channels:
        raise ValueError(
            f"expected {channels} channel(s), i.e. shape (N, {channels}, H, W), got shape {tuple(x.shape)}"
        )
    if x.dtype != dtype:
        convert = "x.float()" if dtype == torch.float32 else "x.double()" if dtype == torch.float64 else f"x.to({dtype})"
        raise TypeError(f"expected dtype {dtype} with values in [0, 1], got {x.dtype}; convert with {convert}")
    return x


def _dtype(model: nn.Module) -> torch.dtype:
    """The dtype of a model's weights (float32 unless converted, e.g. with ``.double()``)."""
    return next(model.parameters()).dtype


class Denoiser(nn.Module):
    """Base class: input checks, the residual convention and the saved configuration.

    Subclasses implement :meth:`body_forward` (the network proper). If ``residual`` is
    true the network output is read as a noise estimate ``n`` and ``forward`` returns
    ``x - n``; otherwise the network output is the denoised image.

    Attributes
    ----------
    config : dict
        ``{"architecture": name, "kwargs": {...}}``, enough to rebuild the model with
        :func:`build_model`.
    """

    architecture = "denoiser"

    def __init__(self, channels: int, residual: bool, **kwargs):
        super().__init__()
        if int(channels) != channels or channels < 1:
            raise ValueError(f"channels must be a positive integer, got {channels}")
        self.channels = int(channels)
        self.residual = bool(residual)
        self.config = {
            "architecture": self.architecture,
            "kwargs": {**kwargs, "channels": self.channels, "residual": self.residual},
        }

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch.

        Parameters
        ----------
        x : (N, C, H, W) float32 tensor, values around [0, 1]
            Noisy images (``C = channels``, 1 for the grayscale models of the book).

        Returns
        -------
        (N, C, H, W) tensor: the denoised images (not clipped).
        """
        check_images(x, self.channels, _dtype(self))
        if not self.training:  # inference: one NaN or inf pixel would spread over the whole output
            _checks.image_values(x, "input images", low=None, high=None)
        out = self.body_forward(x)
        return x - out if self.residual else out

    def estimate_noise(self, x: torch.Tensor) -> torch.Tensor:
        """The noise the model removes: ``x - forward(x)`` (the raw output of a residual model)."""
        check_images(x, self.channels, _dtype(self))
        out = self.body_forward(x)
        return out if self.residual else x - out


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------------
# DnCNN
# ----------------------------------------------------------------------------------------


class DnCNN(Denoiser):
    """DnCNN of Zhang et al. (2017): a plain stack of 3x3 convolutions with residual learning.

    Layer 1 is Conv + ReLU, layers 2 .. depth-1 are Conv (no bias) + BatchNorm + ReLU, and
    the last layer is a Conv back to ``channels`` maps. Zero padding keeps the size, so the
    network accepts any ``H, W`` (no fully connected layer). With ``residual=True`` the
    stack predicts the noise and ``forward`` returns ``input - predicted noise``.

    Parameters
    ----------
    depth : int >= 2
        Number of convolution layers (17 for DnCNN-S at a known noise level, 20 for the
        blind DnCNN-B in the paper).
    width : int
        Feature maps per hidden layer (64 in the paper).
    channels : int
        Image channels (1: grayscale).
    bias : bool
        Bias in the first and last convolutions. With BatchNorm the middle convolutions
        never have one: the BatchNorm that follows would cancel it. With ``bias=False`` (the
        default) the model has ``9 c w + (depth - 2) (9 w^2 + 2 w) + 9 w c`` parameters,
        556,032 for depth 17, width 64, c = 1; ``bias=True`` adds ``w + c``.
    residual : bool
        Predict the noise (True, as in the paper) or the clean image (False).
    batch_norm : bool
        BatchNorm in the middle layers (True, as in the paper). Without it the middle
        convolutions get a bias when ``bias=True``; with ``bias=False`` the network then has
        no additive constant at all, so it is positively homogeneous:
        ``model(a * x) == a * model(x)`` for every ``a > 0`` (the "bias-free" networks of
        Mohan et al., ICLR 2020).
    """

    architecture = "dncnn"

    def __init__(
        self,
        depth: int = 17,
        width: int = 64,
        channels: int = 1,
        bias: bool = False,
        residual: bool = True,
        batch_norm: bool = True,
    ):
        depth = _check_positive_int("depth", depth, 2)
        width = _check_positive_int("width", width)
        kwargs = {"depth": depth, "width": width, "bias": bool(bias)}
        if not batch_norm:  # only recorded when it differs from the paper, so older manifests stay valid
            kwargs["batch_norm"] = False
        super().__init__(channels, residual, **kwargs)
        c = self.channels
        layers: list[nn.Module] = [nn.Conv2d(c, width, 3, padding=1, bias=bias), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            if batch_norm:
                layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)]
            else:
                layers.append(nn.Conv2d(width, width, 3, padding=1, bias=bias))
            layers.append(nn.ReLU(inplace=True))
        layers.append(nn.Conv2d(width, c, 3, padding=1, bias=bias))
        self.layers = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) normal initialisation, BatchNorm as identity, and a last layer of zeros.

        With the last convolution at zero, an untrained residual model predicts no noise and
        returns its input. With He initialisation there too, a deep stack starts by
        predicting a large random "noise" (an MSE near 0.1 on [0, 1] images, ten times that of
        sigma-25 noise itself) and spends hundreds of steps undoing it; on the CPU budget of
        the shipped models that was the difference between learning and not.
        """
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.residual:
            nn.init.zeros_(self.layers[-1].weight)

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# ----------------------------------------------------------------------------------------
# U-Net
# ----------------------------------------------------------------------------------------


def _conv_block(cin: int, cout: int, batch_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(2):
        layers.append(nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class UNet(Denoiser):
    """U-Net (Ronneberger et al., 2015) for image-to-image tasks, with padding to any size.

    The encoder applies a block of two 3x3 Conv (+ BatchNorm) + ReLU and halves the
    resolution with 2x2 max pooling, ``depth`` times, doubling the number of feature maps
    each time (``width * 2**level``). The decoder doubles the resolution (a 2x2 transposed
    convolution with stride 2, or interpolation followed by a 3x3 convolution), concatenates
    the encoder features of the same level (skip connection) and applies a block. A 1x1
    convolution maps to ``channels`` outputs.

    Inputs whose height or width is not a multiple of ``2**depth`` are padded at the bottom
    and right by reflection and the output is cropped back, so output shape == input shape.

    Parameters
    ----------
    depth : int >= 1
        Number of downsampling steps.
    width : int
        Feature maps at full resolution.
    channels : int
        Image channels.
    upsample : {"transpose", "bilinear", "nearest"}
        How the decoder upsamples.
    batch_norm : bool
        BatchNorm after each convolution of the blocks (then those convolutions have no bias).
    residual : bool
        Predict the noise and subtract it (True, like DnCNN) or predict the image.
    skips : bool
        Concatenate the encoder features into the decoder (True: a U-Net). False gives the
        plain encoder-decoder of the same depth and widths, whose decoder blocks then take
        half as many input maps (so it has fewer parameters).
    """

    architecture = "unet"

    def __init__(
        self,
        depth: int = 3,
        width: int = 32,
        channels: int = 1,
        upsample: str = "transpose",
        batch_norm: bool = True,
        residual: bool = True,
        skips: bool = True,
    ):
        depth = _check_positive_int("depth", depth)
        width = _check_positive_int("width", width)
        if upsample not in ("transpose", "bilinear", "nearest"):
            raise ValueError(f"upsample must be 'transpose', 'bilinear' or 'nearest', got {upsample!r}")
        kwargs = {"depth": depth, "width": width, "upsample": upsample, "batch_norm": bool(batch_norm)}
        if not skips:  # only recorded when False, so the manifests of U-Nets stay as they were
            kwargs["skips"] = False
        super().__init__(channels, residual, **kwargs)
        self.depth = depth
        self.skips = bool(skips)
        widths = [width * 2**level for level in range(depth + 1)]
        self.encoder = nn.ModuleList([_conv_block(self.channels, widths[0], batch_norm)])
        self.encoder.extend(_conv_block(widths[k - 1], widths[k], batch_norm) for k in range(1, depth + 1))
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for k in range(depth, 0, -1):
            if upsample == "transpose":
                self.up.append(nn.ConvTranspose2d(widths[k], widths[k - 1], 2, stride=2))
            else:
                interp = nn.Upsample(scale_factor=2, mode=upsample, align_corners=False if upsample == "bilinear" else None)
                self.up.append(nn.Sequential(interp, nn.Conv2d(widths[k], widths[k - 1], 3, padding=1)))
            self.decoder.append(_conv_block((2 if skips else 1) * widths[k - 1], widths[k - 1], batch_norm))
        self.head = nn.Conv2d(widths[0], self.channels, 1)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        if self.residual:  # start as the identity map, like DnCNN (see DnCNN.reset_parameters)
            nn.init.zeros_(self.head.weight)

    def body_forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = 2**self.depth
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        skips = []
        for k, block in enumerate(self.encoder):
            if k > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck output is x itself
        for up, block in zip(self.up, self.decoder):
            x = up(x)
            skip = skips.pop()
            x = block(torch.cat([skip, x], dim=1) if self.skips else x)
        return self.head(x)[..., :h, :w]


# ----------------------------------------------------------------------------------------
# convolutional autoencoder (MNIST)
# ----------------------------------------------------------------------------------------


class ConvAutoencoder(nn.Module):
    """Small convolutional autoencoder for 28 x 28 grayscale images (MNIST).

    Encoder: two 3x3 convolutions with stride 2 and padding 1 (28 -> 14 -> 7 pixels,
    ``width`` then ``2 width`` feature maps, ReLU after each), flattened and mapped by a
    linear layer to ``latent`` numbers. Decoder, the mirror image: a linear layer and
    ReLU back to ``2 width`` maps of 7 x 7, then two 4x4 transposed convolutions with
    stride 2 and padding 1 (7 -> 14 -> 28; ReLU between them) and a sigmoid, so the
    reconstruction lies in (0, 1) like the images.

    Parameters
    ----------
    latent : int >= 1
        Size of the code (the bottleneck).
    width : int >= 1
        Feature maps of the first convolution.
    """

    size = 28
    """Image height and width the model accepts."""

    def __init__(self, latent: int = 16, width: int = 16):
        super().__init__()
        self.latent = _check_positive_int("latent", latent)
        self.width = _check_positive_int("width", width)
        w, s = self.width, self.size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(1, w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2 * w * s * s, self.latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(self.latent, 2 * w * s * s),
            nn.ReLU(),
            nn.Unflatten(1, (2 * w, s, s)),
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(w, 1, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code of each image.

        Parameters
        ----------
        x : (N, 1, 28, 28) float32 tensor, values in [0, 1]

        Returns
        -------
        (N, latent) float32 tensor.
        """
        check_images(x, 1, _dtype(self))
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"expected images of 28 x 28 pixels, shape (N, 1, 28, 28), got shape {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images from codes.

        Parameters
        ----------
        z : (N, latent) float32 tensor

        Returns
        -------
        (N, 1, 28, 28) float32 tensor with values in (0, 1).
        """
        if not isinstance(z, torch.Tensor) or z.ndim != 2 or z.shape[1] != self.latent:
            got = f"shape {tuple(z.shape)}" if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"expected a tensor of codes of shape (N, {self.latent}), got {got}")
        if z.dtype != _dtype(self):
            raise TypeError(f"expected codes of dtype {_dtype(self)}, got {z.dtype} (codes have the model's dtype)")
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``decode(encode(x))``: (N, 1, 28, 28) in, (N, 1, 28, 28) in (0, 1) out."""
        return self.decode(self.encode(x))


# ----------------------------------------------------------------------------------------
# registry
# ----------------------------------------------------------------------------------------

ARCHITECTURES = {"dncnn": DnCNN, "unet": UNet}
"""Architecture name -> class, as used in the weights manifest and the training CLI."""


def build_model(architecture: str, **kwargs) -> Denoiser:
    """Build a freshly initialised model, e.g. ``build_model("dncnn", depth=17)``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    try:
        return ARCHITECTURES[architecture](**kwargs)
    except TypeError as err:
        raise TypeError(f"invalid arguments for {architecture}: {err}") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------------------
# pretrained weights
# ----------------------------------------------------------------------------------------


class WeightsNotFoundError(LookupError):
    """No weights of that name in the manifest, or the file it names is missing."""

    def __str__(self) -> str:  # LookupError would print the repr of the message
        return str(self.args[0]) if self.args else ""


def sha256_file(path) -> str:
    """Hex SHA-256 digest of a file."""
    return _checks.file_digest(path, "sha256")


def _weights_dir(weights_dir) -> Path:
    return Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR


_REQUIRED = ("name", "file", "architecture", "kwargs", "sha256")


def _check_entry_file(entry: dict, folder: Path, source) -> None:
    """A manifest entry's ``file`` must name a file inside its weights folder (no absolute path, no ``..``)."""
    try:
        _checks.inside(folder, entry["file"], what=f"the file of weights {entry.get('name')!r} in {source}")
    except _checks.UsageError as err:
        raise _checks.UsageError(f"refused: {err}") from None


def _read_manifest(weights_dir: Path) -> list[dict]:
    path = weights_dir / MANIFEST_NAME
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"weights manifest {path} is not valid JSON: {err}") from None
    if not isinstance(entries, list):
        raise ValueError(f"weights manifest {path} must hold a JSON list of entries, got {type(entries).__name__}")
    seen = set()
    for i, entry in enumerate(entries):
        missing = [k for k in _REQUIRED if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(f"entry {i} of weights manifest {path} lacks the keys {missing}")
        if entry["name"] in seen:
            raise ValueError(f"weights manifest {path} lists the name {entry['name']!r} twice")
        seen.add(entry["name"])
        _check_entry_file(entry, weights_dir, path)
    return entries


def _recipe(name: str) -> str:
    return RECIPES.get(name, f"python -m nnimaging.train {{dncnn,unet}} [options] --out runs/{name} --export {name}")


def available(weights_dir=None, published: bool | None = None) -> list[dict]:
    """The pretrained models: the book's own and the DnCNN authors' published weights, sorted by name.

    Parameters
    ----------
    weights_dir : path, optional
        Directory with ``manifest.json`` (default: the package's ``weights/``).
    published : bool, optional
        Also list the published weights of :mod:`nnimaging.published` (``zhang2017-...``). By
        default they are listed with the package's weights, not with another ``weights_dir``.

    Returns
    -------
    list of dict
        One manifest entry per model: ``name``, ``file``, ``architecture``, ``kwargs``
        (constructor arguments), ``training`` (dataset, noise, steps, ... as recorded by the
        training CLI) and ``sha256``. The published entries also have ``source`` (their
        download address), ``description`` and ``published`` (the paper's mean PSNRs).
    """
    entries = [copy.deepcopy(e) for e in _read_manifest(_weights_dir(weights_dir))]
    if weights_dir is None if published is None else published:
        from .published import entries as published_entries

        entries += published_entries()
    return sorted(entries, key=lambda e: e["name"])


def check_state_dict(model: nn.Module, state_dict: dict, source: str = "state dict") -> None:
    """Raise ``ValueError`` listing every missing key, unexpected key and shape mismatch.

    Parameters
    ----------
    model : nn.Module
        The model the weights are meant for.
    state_dict : dict of str -> tensor
        The weights (as returned by ``model.state_dict()``).
    source : str
        Name used in the message (e.g. the file path).
    """
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"incompatible weights file {source}: expected a dict of tensors (a state dict)")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        what = getattr(model, "config", {"architecture": type(model).__name__})
        raise ValueError(
            f"incompatible weights file {source} for {what}: missing keys {missing}, "
            f"unexpected keys {unexpected}, shape mismatch {mismatched}"
        )


def load_pretrained(name: str, weights_dir=None) -> Denoiser:
    """Load a pretrained model by name, verified, in eval mode on the CPU.

    Parameters
    ----------
    name : str
        A name listed by :func:`available`, e.g. ``"dncnn-s25"``. The names of the DnCNN
        authors' weights (``"zhang2017-dncnn-s25"``, ...; :data:`nnimaging.published.NAMES`) are
        served by :func:`nnimaging.published.load`, from ``NNIMAGING_WEIGHTS``, the cache or a
        verified download, whatever ``weights_dir`` says.
    weights_dir : path, optional
        Directory with ``manifest.json`` and the weight files (default: the package's).

    Returns
    -------
    Denoiser
        The model, in eval mode, on the CPU; its manifest entry is in ``model.pretrained``.

    Raises
    ------
    WeightsNotFoundError
        No such name in the manifest or the file is missing; the message gives the command
        that trains and exports the model.
    ValueError
        SHA-256 mismatch, or a state dict that does not fit the architecture.
    """
    from . import published

    if name in published.NAMES:  # the DnCNN authors' files, read as HDF5 (nnimaging.published)
        return published.load(name)
    wdir = _weights_dir(weights_dir)
    if not (wdir / MANIFEST_NAME).exists():
        raise WeightsNotFoundError(
            f"manifest missing: no weights named {name!r} in {wdir}, which has no {MANIFEST_NAME} (none yet "
            f"exported there). Restore the package's weights folder, pass the weights_dir that holds "
            f"{MANIFEST_NAME}, or train and export {name!r} with:\n    {_recipe(name)}"
        )
    entries = {e["name"]: e for e in _read_manifest(wdir)}
    if name not in entries:
        names = ", ".join(sorted(entries)) or "none yet"
        raise WeightsNotFoundError(
            f"no pretrained weights named {name!r} in {wdir} (available: {names}). "
            f"Train and export them with:\n    {_recipe(name)}"
        )
    entry = entries[name]
    path = wdir / entry["file"]
    if not path.is_file():
        raise WeightsNotFoundError(
            f"the manifest in {wdir} lists {name!r} but its file {path} is missing. "
            f"Train and export it with:\n    {_recipe(name)}"
        )
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ValueError(
            f"checksum mismatch for {path}: manifest says sha256 {entry['sha256']}, file has {digest}; "
            "the file is corrupted or the manifest is out of date"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(f"incompatible weights file {path}: cannot read it as a state dict ({err})") from None
    model = build_model(entry["architecture"], **entry["kwargs"])
    check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    model.eval()
    model.pretrained = copy.deepcopy(entry)
    return model


def training_stages(entry: dict) -> list[dict]:
    """How a model was trained, stage by stage, oldest first (a manifest entry, or ``model.pretrained``).

    A run started from other weights (``python -m nnimaging.train --init``) records them and their
    own training under ``training["init"]``; this follows that chain. Each stage is a training
    record without its ``init``: ``steps``, ``batch_size``, ``elapsed_s``, ``command`` ...
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("training"), dict):
        raise ValueError("expected a manifest entry with a 'training' record (model.pretrained or models.available())")
    stages, record = [], entry["training"]
    while record:
        stages.append({k: v for k, v in record.items() if k != "init"})
        record = (record.get("init") or {}).get("training")
    return stages[::-1]


def load_run(run_dir) -> Denoiser:
    """Load the final weights of a training run folder of :mod:`nnimaging.train`, verified.

    The folder holds the weights and ``manifest_entry.json`` (written when the run finished);
    a one-entry ``manifest.json`` is written beside them so :func:`load_pretrained` reads them.
    """
    run_dir = Path(run_dir)
    entry_path = run_dir / "manifest_entry.json"
    if not entry_path.is_file():
        raise WeightsNotFoundError(f"{run_dir} has no manifest_entry.json: the run has not finished "
                                   "(continue it with --resume)")
    entry = json.loads(entry_path.read_text(encoding="utf-8"))
    _checks.atomic_write_json(run_dir / MANIFEST_NAME, [entry])
    return load_pretrained(entry["name"], weights_dir=run_dir)


def save_pretrained(
    model: Denoiser, name: str, training: dict | None = None, weights_dir=None, update_manifest: bool = True
) -> dict:
    """Write ``NAME.pt`` (the state dict on the CPU) and its manifest entry.

    Parameters
    ----------
    model : Denoiser
        A model of this module (its ``config`` says how to rebuild it).
    name : str
        Name of the weights (letters, digits, ``_ . -``).
    training : dict, optional
        Training settings to record (JSON-serialisable).
    weights_dir : path, optional
        Target directory (default: the package's ``weights/``); created if needed.
    update_manifest : bool
        Add (or replace) the entry in ``weights_dir/manifest.json``.

    Returns
    -------
    dict
        The manifest entry.
    """
    if not _NAME_RE.match(name):
        raise ValueError(f"weights name must use letters, digits, '_', '.', '-', got {name!r}")
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or config.get("architecture") not in ARCHITECTURES:
        raise TypeError(f"expected a model built by nnimaging.models (DnCNN, UNet), got {type(model).__name__}")
    wdir = _weights_dir(weights_dir)
    wdir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    path = wdir / f"{name}.pt"
    json.dumps(copy.deepcopy(training) if training else {})  # fail before writing if not JSON-serialisable
    if update_manifest:
        entries = _read_manifest(wdir)  # a damaged manifest fails here, before any file is written
    _checks.atomic_torch_save(state, path)
    entry = {
        "name": name,
        "file": path.name,
        "architecture": config["architecture"],
        "kwargs": copy.deepcopy(config["kwargs"]),
        "parameters": count_parameters(model),
        "training": copy.deepcopy(training) if training else {},
        "sha256": sha256_file(path),
    }
    json.dumps(entry)  # fail early if training settings are not JSON-serialisable
    if update_manifest:
        entries = [e for e in entries if e["name"] != name] + [entry]
        entries.sort(key=lambda e: e["name"])
        _checks.atomic_write_json(wdir / MANIFEST_NAME, entries)
    return entry


def install_weights(source_dir, names=None, weights_dir=None) -> list[dict]:
    """Copy exported weights (for example from a GPU machine) into a weights directory.

    Reads ``source_dir/manifest.json`` (written by ``--export NAME --weights-dir
    source_dir``) or, failing that, ``source_dir/manifest_entry.json`` (written into every
    training run directory), verifies each file's SHA-256, copies the files and merges the
    entries into ``weights_dir/manifest.json`` (replacing entries of the same name).

    Parameters
    ----------
    source_dir : path
        Directory with the weight files and their manifest (or manifest entry).
    names : list of str, optional
        Only these entries (default: all).
    weights_dir : path, optional
        Target (default: the package's ``weights/``).

    Returns
    -------
    list of dict
        The installed entries.
    """
    source = Path(source_dir)
    if (source / MANIFEST_NAME).is_file():
        entries = _read_manifest(source)
    elif (source / "manifest_entry.json").is_file():
        entries = [json.loads((source / "manifest_entry.json").read_text(encoding="utf-8"))]
        missing = [k for k in _REQUIRED if not isinstance(entries[0], dict) or k not in entries[0]]
        if missing:
            raise ValueError(f"{source / 'manifest_entry.json'} lacks the keys {missing}")
        if not _NAME_RE.match(str(entries[0]["name"])):
            raise _checks.UsageError(f"refused: weights name {entries[0]['name']!r} in {source / 'manifest_entry.json'} "
                                     "must use letters, digits, '_', '.', '-'")
        _check_entry_file(entries[0], source, source / "manifest_entry.json")
    else:
        raise FileNotFoundError(f"neither {MANIFEST_NAME} nor manifest_entry.json in {source}")
    if names is not None:
        unknown = sorted(set(names) - {e["name"] for e in entries})
        if unknown:
            raise WeightsNotFoundError(f"{source} has no weights named {unknown}")
        entries = [e for e in entries if e["name"] in set(names)]
    for entry in entries:
        digest = sha256_file(source / entry["file"])
        if digest != entry["sha256"]:
            raise ValueError(f"checksum mismatch for {source / entry['file']}: entry says {entry['sha256']}, file has {digest}")
        model = build_model(entry["architecture"], **entry["kwargs"])
        check_state_dict(model, torch.load(source / entry["file"], map_location="cpu", weights_only=True), entry["file"])
    target = _weights_dir(weights_dir)
    target.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        _check_entry_file(entry, target, f"the target folder {target}")
    existing = _read_manifest(target)  # a damaged target manifest fails here, before any copy
    for entry in entries:
        if (source / entry["file"]).resolve() != (target / entry["file"]).resolve():
            _checks.atomic_copy(source / entry["file"], target / entry["file"])
    installed = {e["name"] for e in entries}
    merged = [e for e in existing if e["name"] not in installed] + [copy.deepcopy(e) for e in entries]
    merged.sort(key=lambda e: e["name"])
    _checks.atomic_write_json(target / MANIFEST_NAME, merged)
    return entries
