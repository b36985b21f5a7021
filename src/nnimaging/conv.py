"""Convolution arithmetic and receptive fields (chapter 4; later chapters use them too).

The math of each block as a small NumPy function that is checked against PyTorch in
``tests/test_conv.py``; the chapter writes the central loops out once and then uses these:

* sizes and counts: :func:`conv_output_size`, :func:`conv_transpose_output_size`,
  :func:`dense_parameter_count`, :func:`conv_parameter_count`;
* the operations: :func:`conv2d` (cross-correlation, as in every deep-learning library),
  :func:`conv_matrix` (the same map as a matrix), :func:`conv_transpose2d`, :func:`pool2d`
  (max, mean and blur pooling), :func:`upsample` (nearest, bilinear), :func:`linear_as_conv`,
  :func:`overlap_counts`;
* receptive fields: :func:`receptive_field`, :func:`receptive_field_table` (the growth rule)
  and :func:`empirical_receptive_field` (autograd on a torch model); a synthetic edge image
  (:func:`edge_image`).

Normalization layers and residual blocks are in :mod:`nnimaging.blocks`; the figures (the
step-through demos, the grid figures, a measured receptive field drawn, a row of images) in
:mod:`nnimaging.convfigures`.

Conventions: images are ``(H, W)`` arrays, feature maps ``(C, H, W)``; convolution weights
have PyTorch's layout ``(C_out, C_in, kh, kw)`` and transposed-convolution weights
``(C_in, C_out, kh, kw)``. The NumPy functions accept arrays or tensors and compute in
float64.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ._checks import positive_int, to_numpy

__all__ = [
    "conv_output_size", "conv_transpose_output_size", "dense_parameter_count",
    "conv_parameter_count", "conv2d", "conv_matrix", "conv_transpose2d", "pool2d",
    "blur_kernel", "upsample", "linear_as_conv", "overlap_counts",
    "receptive_field", "receptive_field_table", "empirical_receptive_field",
    "edge_image", "POOL_KINDS",
]

POOL_KINDS = ("max", "mean", "blur")
"""Kinds of pooling :func:`pool2d` implements."""


# ----------------------------------------------------------------------------- checks
def _pair(name: str, value, minimum: int = 0) -> tuple[int, int]:
    """An int or a pair of ints (rows, columns), each >= minimum."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return positive_int(name, value[0], minimum), positive_int(name, value[1], minimum)
    v = positive_int(name, value, minimum)
    return v, v


def _array(name: str, x, ndims: tuple[int, ...]) -> np.ndarray:
    """``x`` as a float64 array with one of the allowed numbers of dimensions."""
    arr = to_numpy(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    return arr.astype(np.float64)


# ----------------------------------------------------------------------------- sizes, counts
def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """Output length of a convolution (or pooling) along one axis.

    ``floor((n + 2 padding - dilation (kernel - 1) - 1) / stride) + 1``; with ``dilation = 1``
    this is the familiar ``floor((n - kernel + 2 padding) / stride) + 1``.

    Parameters
    ----------
    n : int
        Input length, >= 1.
    kernel, stride, dilation : int
        Kernel size, step between windows and spacing of kernel taps, each >= 1.
    padding : int
        Zeros added on each side, >= 0.

    Returns
    -------
    int
        The output length, >= 1.

    Raises
    ------
    ValueError
        If the (dilated) kernel is larger than the padded input.
    """
    n, kernel, stride, dilation = (positive_int("n", n, 1), positive_int("kernel", kernel, 1),
                                   positive_int("stride", stride, 1), positive_int("dilation", dilation, 1))
    padding = positive_int("padding", padding, 0)
    span = dilation * (kernel - 1) + 1
    if span > n + 2 * padding:
        raise ValueError(f"kernel spans {span} samples but the padded input has only "
                         f"{n + 2 * padding} (n={n}, padding={padding})")
    return (n + 2 * padding - span) // stride + 1


def conv_transpose_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0) -> int:
    """Output length of a transposed convolution along one axis.

    ``(n - 1) stride - 2 padding + kernel + output_padding``: every input sample places a
    kernel ``stride`` samples after the previous one; ``padding`` crops the result on both
    sides (the inverse of a convolution's padding).
    """
    n, kernel, stride = positive_int("n", n, 1), positive_int("kernel", kernel, 1), positive_int("stride", stride, 1)
    padding, output_padding = positive_int("padding", padding, 0), positive_int("output_padding", output_padding, 0)
    if output_padding >= stride:
        raise ValueError(f"output_padding must be smaller than stride, got {output_padding} "
                         f"and {stride}")
    size = (n - 1) * stride - 2 * padding + kernel + output_padding
    if size < 1:
        raise ValueError(f"padding={padding} crops the whole output (size {size})")
    return size


def dense_parameter_count(n_in: int, n_out: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer: ``n_in n_out`` weights (+ ``n_out`` biases)."""
    n_in, n_out = positive_int("n_in", n_in, 1), positive_int("n_out", n_out, 1)
    return n_in * n_out + (n_out if bias else 0)


def conv_parameter_count(c_in: int, c_out: int, kernel, bias: bool = True) -> int:
    """Parameters of a convolutional layer: ``c_out c_in kh kw`` weights (+ ``c_out`` biases).

    The count does not depend on the image size: the same kernels slide over every position.
    """
    c_in, c_out = positive_int("c_in", c_in, 1), positive_int("c_out", c_out, 1)
    kh, kw = _pair("kernel", kernel, 1)
    return c_out * c_in * kh * kw + (c_out if bias else 0)


# ----------------------------------------------------------------------------- convolution
def _as_maps(x, name: str = "x") -> tuple[np.ndarray, bool]:
    """(C, H, W) float64 view of x; flag says whether x was a single (H, W) image."""
    arr = _array(name, x, (2, 3))
    return (arr[None], True) if arr.ndim == 2 else (arr, False)


def _maps_and_kernels(x, weight, in_axis: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Inputs of :func:`conv2d` / :func:`conv_transpose2d` as (C, H, W) maps and 4-D kernels.

    ``in_axis`` is the weight axis of the input channels (1 for convolution, 0 for PyTorch's
    transposed-convolution layout). The flag says whether a 2-D image and kernel were given.
    """
    maps, single = _as_maps(x)
    w = _array("weight", weight, (2, 4))
    flat = w.ndim == 2
    if flat:
        if not single:
            raise ValueError(f"a 2-D kernel needs a 2-D image, got x of shape {maps.shape}")
        return maps, w[None, None], True
    if w.shape[in_axis] != maps.shape[0]:
        where = " (first axis)" if in_axis == 0 else ""
        raise ValueError(f"weight has {w.shape[in_axis]} input channels{where} but x has "
                         f"{maps.shape[0]} (weight {w.shape}, x {maps.shape})")
    return maps, w, False


def _finish(out: np.ndarray, bias, flat: bool) -> np.ndarray:
    """Add the per-channel ``bias`` to (C_out, H, W) ``out``; drop the channel axis if ``flat``."""
    if bias is not None:
        bias = _array("bias", bias, (1,))
        if bias.shape[0] != out.shape[0]:
            raise ValueError(f"bias must have {out.shape[0]} entries, got {bias.shape[0]}")
        out = out + bias[:, None, None]
    return out[0] if flat else out


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1) -> np.ndarray:
    """2-D convolution as deep-learning libraries define it (a cross-correlation).

    ``y[o, i, j] = bias[o] + sum_{c, a, b} weight[o, c, a, b] x_pad[c, i s + a d, j s + b d]``
    with ``x_pad`` the input with ``padding`` zeros on every side: the kernel is *not*
    flipped, so this is the sliding inner product that ``torch.nn.Conv2d`` computes.

    Parameters
    ----------
    x : (C_in, H, W) or (H, W) array
        Input feature maps (or one image).
    weight : (C_out, C_in, kh, kw) or (kh, kw) array
        Kernels; a 2-D kernel needs a 2-D ``x``.
    bias : (C_out,) array, optional
        Added to each output channel.
    stride, padding, dilation : int or (int, int)
        As in ``torch.nn.Conv2d`` (zero padding).

    Returns
    -------
    (C_out, H_out, W_out) float64 array, or (H_out, W_out) for a 2-D ``x`` and ``weight``;
    ``H_out = conv_output_size(H, kh, stride, padding, dilation)``.
    """
    maps, w, flat = _maps_and_kernels(x, weight, in_axis=1)
    (sh, sw), (ph, pw), (dh, dw) = (_pair("stride", stride, 1), _pair("padding", padding),
                                    _pair("dilation", dilation, 1))
    _, kh, kw = w.shape[1:]
    h_out = conv_output_size(maps.shape[1], kh, sh, ph, dh)
    w_out = conv_output_size(maps.shape[2], kw, sw, pw, dw)
    xp = np.pad(maps, ((0, 0), (ph, ph), (pw, pw)))
    out = np.zeros((w.shape[0], h_out, w_out))
    for a in range(kh):  # one tap of the kernel at a time: a strided slice of the input
        for b in range(kw):
            patch = xp[:, a * dh: a * dh + sh * (h_out - 1) + 1: sh,
                       b * dw: b * dw + sw * (w_out - 1) + 1: sw]
            out += np.einsum("oc,chw->ohw", w[:, :, a, b], patch)
    return _finish(out, bias, flat)


def conv_matrix(kernel, input_shape, stride=1, padding=0) -> np.ndarray:
    """The matrix ``M`` of a single-channel convolution: ``conv2d(x).ravel() == M @ x.ravel()``.

    Column ``k`` is the response to the unit impulse at pixel ``k`` (row-major order). Every
    row holds the same kernel values, shifted: that is weight sharing. Its transpose is the
    transposed convolution, ``conv_transpose2d(y) == (M.T @ y.ravel()).reshape(H, W)``.

    Parameters
    ----------
    kernel : (kh, kw) array
    input_shape : (H, W) tuple of ints
    stride, padding : int or (int, int)

    Returns
    -------
    (H_out W_out, H W) float64 array
    """
    k = _array("kernel", kernel, (2,))
    h, w = _pair("input_shape", tuple(input_shape), 1)
    cols = []
    for idx in range(h * w):
        impulse = np.zeros(h * w)
        impulse[idx] = 1.0
        cols.append(conv2d(impulse.reshape(h, w), k, stride=stride, padding=padding).ravel())
    return np.stack(cols, axis=1)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0) -> np.ndarray:
    """Transposed convolution: every input value scales the kernel, added in at stride ``s``.

    ``y_full[o, i s + a, j s + b] += x[c, i, j] weight[c, o, a, b]`` for all ``c, i, j, a, b``;
    then ``padding`` rows and columns are cropped on each side, as ``torch.nn.ConvTranspose2d``
    does. It is the transpose (adjoint) of :func:`conv2d` with the same settings, not its
    inverse.

    Parameters
    ----------
    x : (C_in, H, W) or (H, W) array
    weight : (C_in, C_out, kh, kw) or (kh, kw) array
        PyTorch's layout for transposed convolutions (input channels first).
    bias : (C_out,) array, optional
    stride, padding, output_padding : int or (int, int)

    Returns
    -------
    (C_out, H_out, W_out) float64 array, or (H_out, W_out) for 2-D inputs;
    ``H_out = conv_transpose_output_size(H, kh, stride, padding, output_padding)``.
    """
    maps, w, flat = _maps_and_kernels(x, weight, in_axis=0)
    (sh, sw), (ph, pw), (oh, ow) = (_pair("stride", stride, 1), _pair("padding", padding),
                                    _pair("output_padding", output_padding))
    _, c_out, kh, kw = w.shape
    _, h, wd = maps.shape
    h_out = conv_transpose_output_size(h, kh, sh, ph, oh)
    w_out = conv_transpose_output_size(wd, kw, sw, pw, ow)
    full = np.zeros((c_out, (h - 1) * sh + kh + oh, (wd - 1) * sw + kw + ow))
    for a in range(kh):  # one tap at a time: scatter every input value into a strided slice
        for b in range(kw):
            full[:, a: a + sh * (h - 1) + 1: sh, b: b + sw * (wd - 1) + 1: sw] += np.einsum(
                "co,chw->ohw", w[:, :, a, b], maps)
    out = full[:, ph: ph + h_out, pw: pw + w_out]
    return _finish(out, bias, flat)


def overlap_counts(n: int, kernel: int, stride: int) -> np.ndarray:
    """How many kernel placements of a transposed convolution cover each output sample.

    The transposed convolution of ``n`` ones with a ``kernel``-long kernel of ones at
    ``stride``: 1-D, length ``(n - 1) stride + kernel``. Uneven counts (``kernel`` not a
    multiple of ``stride``) are the origin of checkerboard artifacts (Odena et al., 2016); in
    2-D the count is the product of the row and column counts.
    """
    n, kernel, stride = positive_int("n", n, 1), positive_int("kernel", kernel, 1), positive_int("stride", stride, 1)
    return conv_transpose2d(np.ones((1, n)), np.ones((1, kernel)), stride=(1, stride))[0]


# ----------------------------------------------------------------------------- pooling
def blur_kernel(size: int) -> np.ndarray:
    """Normalized binomial kernel ``b b^T / sum``, ``b`` = row ``size - 1`` of Pascal's triangle.

    ``size=3`` gives ``[[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16``, the blur of blur pooling
    (Zhang, 2019, "Making convolutional networks shift-invariant again"); ``size=2`` is the
    mean over a 2x2 window.
    """
    size = positive_int("size", size, 1)
    b = np.array([math.comb(size - 1, i) for i in range(size)], dtype=np.float64)
    k = np.outer(b, b)
    return k / k.sum()


def pool2d(x, window, stride=None, kind: str = "max") -> np.ndarray:
    """Pooling over ``window x window`` patches taken every ``stride`` samples (no padding).

    * ``"max"``: the largest value of each window (``torch.nn.MaxPool2d``);
    * ``"mean"``: the average of each window (``torch.nn.AvgPool2d``);
    * ``"blur"``: a weighted average with the binomial weights of :func:`blur_kernel`, i.e.
      a low-pass filter before subsampling (Zhang, 2019).

    Parameters
    ----------
    x : (C, H, W) or (H, W) array
        Each channel is pooled on its own.
    window : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``window`` (non-overlapping windows).
    kind : {"max", "mean", "blur"}

    Returns
    -------
    array of the same number of dimensions as ``x``; spatial size
    ``conv_output_size(H, window, stride)``.
    """
    if kind not in POOL_KINDS:
        raise ValueError(f"kind must be one of {POOL_KINDS}, got {kind!r}")
    maps, single = _as_maps(x)
    kh, kw = _pair("window", window, 1)
    sh, sw = (kh, kw) if stride is None else _pair("stride", stride, 1)
    h_out = conv_output_size(maps.shape[1], kh, sh)
    w_out = conv_output_size(maps.shape[2], kw, sw)
    windows = np.lib.stride_tricks.sliding_window_view(maps, (kh, kw), axis=(1, 2))
    windows = windows[:, : sh * (h_out - 1) + 1: sh, : sw * (w_out - 1) + 1: sw]
    if kind == "max":
        out = windows.max(axis=(-2, -1))
    elif kind == "mean":
        out = windows.mean(axis=(-2, -1))
    else:
        if kh != kw:
            raise ValueError(f"blur pooling needs a square window, got {(kh, kw)}")
        out = np.einsum("chwab,ab->chw", windows, blur_kernel(kh))
    return out[0] if single else out


# ----------------------------------------------------------------------------- upsampling, norm
def upsample(x, factor: int, mode: str = "nearest") -> np.ndarray:
    """Upsample by an integer ``factor`` like ``torch.nn.functional.interpolate``.

    ``"nearest"`` repeats each sample ``factor`` times; ``"bilinear"`` interpolates linearly
    between the input samples at positions ``(i + 0.5) / factor - 0.5`` of the input grid
    (``align_corners=False``), holding the edge value beyond the first and last sample.

    Parameters
    ----------
    x : (C, H, W) or (H, W) array
    factor : int, >= 1
    mode : {"nearest", "bilinear"}

    Returns
    -------
    array with the spatial size multiplied by ``factor``.
    """
    factor = positive_int("factor", factor, 1)
    if mode not in ("nearest", "bilinear"):
        raise ValueError(f"mode must be 'nearest' or 'bilinear', got {mode!r}")
    maps, single = _as_maps(x)
    if mode == "nearest":
        out = maps.repeat(factor, axis=1).repeat(factor, axis=2)
    else:
        out = maps
        for axis in (1, 2):
            n = out.shape[axis]
            pos = np.maximum((np.arange(n * factor) + 0.5) / factor - 0.5, 0.0)
            lo = np.minimum(np.floor(pos).astype(int), n - 1)
            hi = np.minimum(lo + 1, n - 1)
            t = pos - lo
            shape = [1, 1, 1]
            shape[axis] = -1
            t = t.reshape(shape)
            out = (1 - t) * np.take(out, lo, axis=axis) + t * np.take(out, hi, axis=axis)
    return out[0] if single else out


# ----------------------------------------------------------------------------- torch pieces
def linear_as_conv(linear, input_shape):
    """The convolution that computes a fully connected layer on ``(C, H, W)`` inputs.

    A ``torch.nn.Linear(C H W, n)`` applied to flattened maps equals a ``torch.nn.Conv2d(C, n,
    kernel_size=(H, W))`` whose kernel covers the whole input: each of the ``n`` kernels is one
    row of the weight matrix, reshaped to ``(C, H, W)``. On a larger input the convolution
    slides, giving a map of outputs (a "fully convolutional" network).

    Parameters
    ----------
    linear : torch.nn.Linear
        With ``in_features == C * H * W``.
    input_shape : (C, H, W) tuple of ints

    Returns
    -------
    torch.nn.Conv2d
        Same dtype and device as ``linear``, sharing no storage with it.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"expected a torch.nn.Linear, got {type(linear).__name__}")
    if len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    c, h, w = (positive_int("input_shape", v, 1) for v in input_shape)
    if c * h * w != linear.in_features:
        raise ValueError(f"input_shape {(c, h, w)} has {c * h * w} values but the layer takes "
                         f"{linear.in_features}")
    conv = nn.Conv2d(c, linear.out_features, (h, w), bias=linear.bias is not None,
                     dtype=linear.weight.dtype, device=linear.weight.device)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.reshape(linear.out_features, c, h, w))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv

# ----------------------------------------------------------------------------- receptive fields
_POINTWISE = ("ReLU", "LeakyReLU", "PReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh",
              "BatchNorm2d", "InstanceNorm2d", "GroupNorm", "LayerNorm", "Identity", "Dropout",
              "Dropout2d")


def _layers_from(layers) -> list[tuple[int, int, int]]:
    """(kernel, stride, dilation) per spatial layer, from tuples or a torch nn.Sequential."""
    if isinstance(layers, nn.Module):
        out = []
        for module in (layers if isinstance(layers, nn.Sequential) else [layers]):
            name = type(module).__name__
            if isinstance(module, nn.Sequential):
                out += _layers_from(module)
            elif isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                k, s = _pair("kernel_size", module.kernel_size, 1), _pair(
                    "stride", module.stride, 1)
                d = _pair("dilation", getattr(module, "dilation", 1), 1)
                if k[0] != k[1] or s[0] != s[1] or d[0] != d[1]:
                    raise ValueError(f"{name} has different row and column settings "
                                     f"(kernel {k}, stride {s}, dilation {d}); use tuples")
                out.append((k[0], s[0], d[0]))
            elif name in _POINTWISE:
                continue
            else:
                raise TypeError(f"cannot compute the receptive field through a {name}: "
                                "supported are Conv2d, MaxPool2d, AvgPool2d, nested Sequential "
                                f"and pointwise layers ({', '.join(_POINTWISE)})")
        return out
    out = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)) or len(layer) not in (2, 3):
            raise ValueError(f"layer {i} must be (kernel, stride) or (kernel, stride, dilation), "
                             f"got {layer!r}")
        k, s = positive_int(f"layer {i} kernel", layer[0], 1), positive_int(f"layer {i} stride", layer[1], 1)
        d = positive_int(f"layer {i} dilation", layer[2], 1) if len(layer) == 3 else 1
        out.append((k, s, d))
    return out


def receptive_field_table(layers) -> list[dict]:
    """Receptive field and jump after each layer of a stack.

    The rule (Araujo et al., 2019, "Computing receptive fields of convolutional neural
    networks", Distill): with ``r_0 = 1`` and ``j_0 = 1`` (one input pixel, one pixel apart),
    a layer of kernel ``k``, stride ``s`` and dilation ``d`` gives
    ``r_l = r_{l-1} + d (k - 1) j_{l-1}`` and ``j_l = j_{l-1} s``: the kernel reaches
    ``d (k - 1)`` more neighbours, which are ``j_{l-1}`` input pixels apart.

    Parameters
    ----------
    layers : sequence of (kernel, stride) or (kernel, stride, dilation), or torch.nn.Sequential
        Pointwise layers (ReLU, batch norm, ...) of a Sequential do not change the field.

    Returns
    -------
    list of dicts with keys ``kernel``, ``stride``, ``dilation``, ``rf`` (receptive field, in
    input pixels along one axis) and ``jump`` (input pixels between neighbouring outputs).
    """
    rf, jump, rows = 1, 1, []
    for k, s, d in _layers_from(layers):
        rf += d * (k - 1) * jump
        jump *= s
        rows.append({"kernel": k, "stride": s, "dilation": d, "rf": rf, "jump": jump})
    return rows


def receptive_field(layers) -> int:
    """Receptive field (input pixels along one axis) of one output of a stack of layers.

    See :func:`receptive_field_table` for the rule and the accepted ``layers``; an empty
    stack has a receptive field of 1.
    """
    table = receptive_field_table(layers)
    return table[-1]["rf"] if table else 1


def empirical_receptive_field(model, size: int, channels: int = 1, trials: int = 4,
                              seed: int = 0):
    """Receptive field measured with autograd: which input pixels move one output pixel.

    Feeds ``trials`` random inputs ``(1, channels, size, size)``, differentiates the centre
    pixel of the output (summed over output channels, so that one channel that a ReLU keeps
    at zero does not hide the field), and accumulates ``|d out / d input|``. Several random
    inputs are needed because a max-pooling window passes gradient to its maximum only and a
    ReLU blocks it where its input is negative; their union covers the full field.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(1, channels, size, size)`` to ``(1, C, H, W)``; run in evaluation mode.
    size : int
        Input height and width; large enough that the field does not reach the border.
    channels : int
    trials : int
    seed : int
        Seed of the random inputs (a local ``torch.Generator``).

    Returns
    -------
    rf : (int, int)
        Height and width of the bounding box of the non-zero gradient.
    grad : (size, size) float64 array
        Accumulated absolute gradient, summed over input channels.
    """
    size, channels, trials = positive_int("size", size, 1), positive_int("channels", channels, 1), positive_int(
        "trials", trials, 1)
    gen = torch.Generator().manual_seed(seed)
    params = list(model.parameters())
    dtype = params[0].dtype if params else torch.float32
    was_training = model.training
    model.eval()
    total = torch.zeros(size, size, dtype=torch.float64)
    try:
        for _ in range(trials):
            x = torch.randn(1, channels, size, size, generator=gen, dtype=dtype,
                            requires_grad=True)
            out = model(x)
            if out.ndim != 4:
                raise ValueError(f"model must return (1, C, H, W) maps, got shape "
                                 f"{tuple(out.shape)}")
            pixel = out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum()
            (grad,) = torch.autograd.grad(pixel, x)   # leaves the model's .grad untouched
            total += grad[0].abs().sum(0).double()
    finally:
        model.train(was_training)
    rows, cols = np.nonzero(total.numpy() > 0)
    if rows.size == 0:
        return (0, 0), total.numpy()
    return (int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)), total.numpy()


# ----------------------------------------------------------------------------- edge image
def edge_image(size: int, position: int) -> np.ndarray:
    """A ``(size, size)`` image: 0 left of column ``position``, 1 from it on (a vertical edge)."""
    size = positive_int("size", size, 1)
    position = positive_int("position", position, 0)
    img = np.zeros((size, size))
    img[:, position:] = 1.0
    return img
