"""Predicting a label at every pixel: from a sliding window to the U-Net (architectures chapter).

A synthetic segmentation task small enough to train on a CPU in seconds, and the four ways of
predicting per pixel that the chapter compares:

* :func:`shapes_dataset`: noisy images of discs and squares of equal area and the same range of
  brightness, labelled per pixel (0 background, 1 disc, 2 square). Telling a disc's pixel from a
  square's needs the shape's outline, which can be far from the pixel;
* :class:`WindowClassifier`: a small convolutional classifier of one ``w x w`` window that labels
  its centre pixel. :func:`sliding_window_predict` runs it on every window cut out of an image;
  :func:`fully_convolutional_predict` runs the *same* network once on the whole padded image, which
  gives the same numbers (Long et al., 2015) for far fewer multiplications
  (:func:`conv_multiplies` counts them);
* :class:`SegmentationNet`: an encoder-decoder, with (``skips=True``, a U-Net, Ronneberger et al.,
  2015) or without skip connections, the only difference between the two;
* :func:`train_segmenter` (per-pixel cross-entropy and Adam), :func:`pixel_accuracy`,
  :func:`iou_per_class` and :func:`plot_segmentations`.

Everything runs in float64 when given float64 inputs, so that a chapter's numbers do not depend on
the processor.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._checks import UsageError, non_negative_number, positive_int, positive_number

__all__ = [
    "CLASS_NAMES", "shapes_dataset", "WindowClassifier", "sliding_window_predict",
    "fully_convolutional_predict", "conv_multiplies", "SegmentationNet", "train_segmenter",
    "predict_labels", "pixel_accuracy", "iou_per_class", "plot_segmentations",
]

CLASS_NAMES = ("background", "disc", "square")


def shapes_dataset(n: int, size: int = 32, seed: int = 0, noise: float = 0.15,
                   shapes: tuple[int, int] = (2, 3), radius: tuple[float, float] = (3.0, 8.0)):
    """Noisy images of discs and squares, with a label for every pixel.

    Each image holds between ``shapes[0]`` and ``shapes[1]`` shapes, drawn in turn (a later shape
    covers an earlier one). Each is a disc or, with equal probability, an axis-aligned square of
    the *same area* (half-side ``r * sqrt(pi) / 2`` for radius ``r``), so that neither size nor
    brightness tells them apart: a shape's brightness is uniform in [0.5, 1] whatever its class.
    Gaussian noise of standard deviation ``noise`` is added to the whole image.

    Parameters
    ----------
    n : int
        Number of images, >= 1.
    size : int
        Side of the square images in pixels, >= 8.
    seed : int
        Seeds a ``numpy.random.Generator``: the same arguments give the same data everywhere.
    noise : float
        Standard deviation of the additive noise, >= 0.
    shapes : (int, int)
        Least and most shapes per image.
    radius : (float, float)
        Range of the discs' radii in pixels (uniform).

    Returns
    -------
    images : (n, 1, size, size) float64 tensor
        Noisy images, background around 0, shapes in [0.5, 1] plus noise.
    labels : (n, size, size) int64 tensor
        0 for background, 1 for a disc, 2 for a square (the order of :data:`CLASS_NAMES`).
    """
    n = positive_int("n", n)
    size = positive_int("size", size, minimum=8)
    noise = non_negative_number("noise", noise)
    lo, hi = (positive_int("shapes", s) for s in shapes)
    r_lo, r_hi = (positive_number("radius", r) for r in radius)
    if lo > hi or r_lo > r_hi:
        raise UsageError(f"shapes and radius must be (least, most) pairs, got {shapes!r} and {radius!r}")
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    images = np.zeros((n, size, size))
    labels = np.zeros((n, size, size), dtype=np.int64)
    for i in range(n):
        for _ in range(rng.integers(lo, hi + 1)):
            square = rng.random() < 0.5
            r = rng.uniform(r_lo, r_hi)
            cy, cx = rng.uniform(r_lo, size - 1 - r_lo, size=2)
            brightness = rng.uniform(0.5, 1.0)
            if square:
                half = r * math.sqrt(math.pi) / 2
                inside = np.maximum(np.abs(rows - cy), np.abs(cols - cx)) <= half
            else:
                inside = (rows - cy) ** 2 + (cols - cx) ** 2 <= r * r
            images[i][inside] = brightness
            labels[i][inside] = 2 if square else 1
        images[i] += noise * rng.standard_normal((size, size))
    return torch.from_numpy(images[:, None]), torch.from_numpy(labels)


class WindowClassifier(nn.Module):
    """Classifies the centre pixel of a ``window x window`` patch.

    ``(window - 1) / 2`` unpadded ``3 x 3`` convolutions with ReLUs shrink the patch to a single
    position, and a ``1 x 1`` convolution turns its features into class scores. On a patch of the
    window's size the output is ``(B, classes, 1, 1)``: one prediction, for the centre pixel. On a
    larger input the same layers slide over it and give one prediction per window position: the
    network is *fully convolutional*.

    Parameters
    ----------
    window : int
        Odd side of the window, >= 3.
    width : int
        Channels of every hidden layer.
    classes : int
        Number of classes, >= 2.
    in_channels : int
        Channels of the image.
    """

    def __init__(self, window: int = 11, width: int = 16, classes: int = 3, in_channels: int = 1):
        super().__init__()
        window = positive_int("window", window, minimum=3)
        if window % 2 == 0:
            raise UsageError(f"window must be odd (a centre pixel), got {window}")
        width = positive_int("width", width)
        classes = positive_int("classes", classes, minimum=2)
        self.window = window
        layers, c = [], positive_int("in_channels", in_channels)
        for _ in range((window - 1) // 2):
            layers += [nn.Conv2d(c, width, 3), nn.ReLU()]
            c = width
        layers.append(nn.Conv2d(c, classes, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


def _check_images(images) -> torch.Tensor:
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise UsageError("images must be a (B, C, H, W) tensor, got "
                         f"{getattr(images, 'shape', type(images).__name__)}")
    return images


def _window_of(model) -> int:
    window = getattr(model, "window", None)
    if not isinstance(window, int):
        raise UsageError(f"model must have an int attribute 'window' (a WindowClassifier), got {type(model).__name__}")
    return window


def sliding_window_predict(model: nn.Module, images: torch.Tensor, batch: int = 4096) -> torch.Tensor:
    """Class scores for every pixel, one window at a time.

    The image is zero-padded by ``window // 2`` on each side, every ``window x window`` patch is
    cut out (``torch.nn.functional.unfold``), and the classifier is applied to each patch on its
    own: ``H * W`` separate evaluations per image.

    Parameters
    ----------
    model : WindowClassifier
        Any module with an int ``window`` attribute that maps ``(N, C, w, w)`` to ``(N, K, 1, 1)``.
    images : (B, C, H, W) tensor
    batch : int
        Patches per call of the model (memory only; the result does not depend on it).

    Returns
    -------
    (B, K, H, W) tensor of scores.
    """
    images = _check_images(images)
    w = _window_of(model)
    b, c, h, wd = images.shape
    patches = F.unfold(images, w, padding=w // 2)                  # (B, C*w*w, H*W)
    patches = patches.transpose(1, 2).reshape(-1, c, w, w)         # (B*H*W, C, w, w)
    with torch.no_grad():
        scores = torch.cat([model(p) for p in patches.split(positive_int("batch", batch))])
    return scores.reshape(b, h * wd, -1).transpose(1, 2).reshape(b, -1, h, wd)


def fully_convolutional_predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class scores for every pixel from one pass of the classifier over the padded image.

    The same zero padding as :func:`sliding_window_predict`, then a single call of the model on
    the whole ``(H + w - 1) x (W + w - 1)`` image. Each output position sees exactly the window that
    the sliding version cuts out, so the scores agree up to rounding.
    """
    images = _check_images(images)
    p = _window_of(model) // 2
    with torch.no_grad():
        return model(F.pad(images, (p, p, p, p)))


def conv_multiplies(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiplications by the convolutional and linear layers of one forward pass.

    A convolution producing ``N`` output values, each from ``C_in / groups`` channels of a
    ``k_h x k_w`` kernel, costs ``N * C_in / groups * k_h * k_w``; a linear layer ``N * in_features``.
    Counted with forward hooks on a zero input of ``input_shape`` (batch dimension included), in
    the model's dtype.

    Returns
    -------
    int
    """
    shape = tuple(positive_int("input_shape", s) for s in input_shape)
    total = [0]

    def hook(module, _inputs, output):
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        else:
            per_output = module.in_features
        total[0] += output.numel() * per_output

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear))]
    try:
        dtype = next(model.parameters()).dtype
        with torch.no_grad():
            model(torch.zeros(shape, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
    return total[0]


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class SegmentationNet(nn.Module):
    """An encoder-decoder for per-pixel classification, with or without the U-Net's skips.

    The encoder has ``depth`` levels of two padded ``3 x 3`` convolutions (with ReLUs) followed by
    ``2 x 2`` max pooling, doubling the channels at each level from ``width``; a bottleneck of two
    more convolutions; the decoder mirrors the encoder with ``2 x 2`` transposed convolutions of
    stride 2. With ``skips=True`` (the U-Net) each decoder level concatenates the encoder's
    features of the same resolution before its convolutions; with ``skips=False`` it sees only
    what came up through the bottleneck (a plain encoder-decoder). A final ``1 x 1`` convolution
    gives the class scores. The two variants differ only in those concatenations (and, because of
    them, in the input channels of the decoders' first convolutions).

    Parameters
    ----------
    classes : int
    width : int
        Channels of the first level.
    depth : int
        Number of poolings; the image side must be divisible by ``2 ** depth``.
    skips : bool
    in_channels : int
    """

    def __init__(self, classes: int = 3, width: int = 8, depth: int = 2, skips: bool = True,
                 in_channels: int = 1):
        super().__init__()
        classes = positive_int("classes", classes, minimum=2)
        width = positive_int("width", width)
        self.depth = positive_int("depth", depth)
        self.skips = bool(skips)
        chans = [width * 2 ** i for i in range(self.depth + 1)]
        self.down = nn.ModuleList()
        c = positive_int("in_channels", in_channels)
        for ch in chans[:-1]:
            self.down.append(_double_conv(c, ch))
            c = ch
        self.bottom = _double_conv(c, chans[-1])
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for ch_in, ch in zip(chans[:0:-1], chans[-2::-1]):
            self.up.append(nn.ConvTranspose2d(ch_in, ch, 2, stride=2))
            self.dec.append(_double_conv(2 * ch if self.skips else ch, ch))
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x):
        if x.shape[-1] % 2 ** self.depth or x.shape[-2] % 2 ** self.depth:
            raise UsageError(f"image sides must be divisible by 2**depth = {2 ** self.depth}, "
                             f"got {tuple(x.shape[-2:])}")
        features = []
        for block in self.down:
            x = block(x)
            features.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(features)):
            x = up(x)
            if self.skips:
                x = torch.cat([skip, x], dim=1)
            x = dec(x)
        return self.head(x)


def train_segmenter(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int,
                    lr: float = 2e-3, batch_size: int = 16, seed: int = 0,
                    pad: int = 0) -> list[float]:
    """Train ``model`` in place with the per-pixel cross-entropy and Adam.

    Each step draws ``batch_size`` images (a ``torch.Generator`` seeded with ``seed``), computes
    the scores ``(B, K, H, W)`` and averages the cross-entropy over all ``B * H * W`` pixels.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, C, H + 2 pad, W + 2 pad)`` to scores ``(B, K, H, W)``.
    images : (N, C, H, W) float tensor
    labels : (N, H, W) int64 tensor
    steps : int
    lr, batch_size, seed
        Adam's learning rate, images per step, seed of the batch draws.
    pad : int
        Zero padding added around each image before the model sees it (``window // 2`` for a
        :class:`WindowClassifier`, whose unpadded convolutions shrink the image).

    Returns
    -------
    list of float
        The loss of every step, measured before the step.
    """
    images = _check_images(images)
    if not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0], *images.shape[2:]):
        raise UsageError(f"labels must be a tensor of shape {(images.shape[0], *images.shape[2:])}, "
                         f"got {getattr(labels, 'shape', type(labels).__name__)}")
    steps = positive_int("steps", steps)
    batch_size = positive_int("batch_size", batch_size)
    pad = positive_int("pad", pad, minimum=0)
    opt = torch.optim.Adam(model.parameters(), lr=positive_number("lr", lr))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(images.shape[0], (batch_size,), generator=gen)
        scores = model(F.pad(images[idx], (pad,) * 4))
        loss = F.cross_entropy(scores, labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def predict_labels(model: nn.Module, images: torch.Tensor, pad: int = 0) -> torch.Tensor:
    """The most likely class of every pixel, ``(B, H, W)`` int64 (``pad`` as in :func:`train_segmenter`)."""
    images = _check_images(images)
    pad = positive_int("pad", pad, minimum=0)
    with torch.no_grad():
        return model(F.pad(images, (pad,) * 4)).argmax(dim=1)


def _check_pair(pred, target):
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor) \
            or pred.shape != target.shape:
        raise UsageError("pred and target must be label tensors of the same shape, got "
                         f"{getattr(pred, 'shape', None)} and {getattr(target, 'shape', None)}")


def pixel_accuracy(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of pixels whose predicted label equals the true one."""
    _check_pair(pred, target)
    return float((pred == target).double().mean())


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, classes: int) -> np.ndarray:
    """Intersection over union of every class, over all pixels of all images.

    ``IoU_k = |pred == k and target == k| / |pred == k or target == k|``; a class absent from both
    gets ``nan``. The mean over classes is the *mean IoU* (mean IU) of the segmentation literature.

    Returns
    -------
    (classes,) float64 array
    """
    _check_pair(pred, target)
    classes = positive_int("classes", classes, minimum=2)
    out = np.full(classes, np.nan)
    for k in range(classes):
        p, t = pred == k, target == k
        union = int((p | t).sum())
        if union:
            out[k] = int((p & t).sum()) / union
    return out


def plot_segmentations(images, labels, predictions: dict, count: int = 4, size: float = 1.25):
    """Images, true labels and each method's labels, one column per image.

    Parameters
    ----------
    images : (N, 1, H, W) tensor
    labels : (N, H, W) tensor
    predictions : dict
        Name -> ``(N, H, W)`` predicted labels, one row each.
    count : int
        Number of images (columns).
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(["#222222", "#1f77b4", "#ff7f0e"])
    rows = [("image", images[:count, 0], "gray"), ("truth", labels[:count], cmap)]
    rows += [(name, p[:count], cmap) for name, p in predictions.items()]
    fig, axes = plt.subplots(len(rows), count, figsize=(size * count + 1.2, size * len(rows)),
                             squeeze=False)
    for r, (name, data, cm) in enumerate(rows):
        for c in range(count):
            ax = axes[r, c]
            kwargs = dict(vmin=0, vmax=2) if cm is cmap else dict(vmin=0, vmax=1)
            ax.imshow(np.asarray(data[c]), cmap=cm, interpolation="nearest", **kwargs)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig
