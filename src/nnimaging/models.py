"""Denoising networks of the book (DnCNN and U-Net), and the MNIST autoencoder.

Every model here follows one call convention: it takes a batch of noisy grayscale
images, an ``(N, 1, H, W)`` float32 tensor with values around [0, 1] (noisy inputs are
not clipped, so they leave that range a little), and returns the **denoised images**
with the same shape. Residual models predict the noise and subtract it inside
``forward``; :meth:`Denoiser.estimate_noise` exposes that prediction.

Their pretrained weights are kept by :mod:`nnimaging.weightstore` (the manifest,
checksum-verified loading, saving and installing). Its names are offered here too, so
``weightstore.load_pretrained("dncnn-s25")`` and ``weightstore.available()`` work as before; they are
imported from the store the first time one is used, because the store itself imports this
module (it rebuilds the architectures named in its manifest).

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
]


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
        depth = _checks.positive_int("depth", depth, 2)
        width = _checks.positive_int("width", width)
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
        depth = _checks.positive_int("depth", depth)
        width = _checks.positive_int("width", width)
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
        self.latent = _checks.positive_int("latent", latent)
        self.width = _checks.positive_int("width", width)
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
