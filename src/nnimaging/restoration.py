"""Restoration with U-Nets (chapter 7): receptive fields, Wiener deconvolution and trained networks.

* the U-Net: :func:`unet_receptive_field` (by the layer rule), :func:`receptive_field_widths`
  (measured with autograd) and the architecture figure :func:`plot_unet`;
* Wiener deconvolution: :func:`wiener_sweep` (PSNR over noise-to-signal ratios) and the demo
  :func:`wiener_demo`;
* trained networks side by side, two live demos with precomputed frames (the networks run in
  Python when the cell runs; the static page shows the stored results):
  :func:`denoiser_comparison_demo` (the blind DnCNN and the U-Net on the same noisy crop, at
  several noise levels) and :func:`deblur_demo` (a blurred, noisy crop restored by Wiener
  deconvolution, by a network that sees the blurred image, and by a network that sees the
  Wiener output);
* :func:`deblur_table` formats the table that ``python -m nnimaging.experiments deblur-table``
  stores in ``nnimaging/results/deblurring.json``; :func:`load_wiener_network` loads a network and
  checks that it was trained on Wiener output.

The deep image prior, the chapter's last section, is :mod:`nnimaging.deep_image_prior`.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle

from . import weightstore
from ._checks import float_image as _image, positive_int as _int
from .conv import receptive_field_table
from .data import crop
from .degrade import Degradation, blur, kernel_from_spec, wiener_deconvolve
from .demo import Choice, Demo, Image, Line, Panel, Points, Slider, register
from .denoising import Table
from .evaluate import denoise, psnr_8bit
from .metrics import psnr
from .models import UNet

__all__ = [
    "unet_receptive_field", "receptive_field_widths", "plot_unet", "wiener_sweep", "wiener_demo",
    "denoiser_comparison_demo", "deblur_demo", "deblur_table", "load_wiener_network", "DEBLUR_METHODS",
]

DEBLUR_METHODS = {"wiener": "Wiener only", "network": "network only", "wiener+network": "Wiener + network"}
"""Row labels of the deblurring table, in order."""


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


@register
def wiener_demo(image: str = "set12/01", top: int = 40, left: int = 80, size: int = 80,
                kernel: str = "motion:9:30", noise_std: float = 0.01, seed: int = 0,
                log_nsr_min: float = -5.0, log_nsr_max: float = -0.5,
                log_nsr_step: float = 0.25) -> Demo:
    """Wiener deconvolution of a blurred, noisy Set12 crop as the noise-to-signal ratio varies.

    Parameters
    ----------
    image, top, left, size
        The crop (:func:`nnimaging.data.crop`).
    kernel : str
        Blur kernel spec (:func:`nnimaging.degrade.kernel_from_spec`), e.g. ``"motion:9:30"``.
    noise_std, seed
        As in :func:`wiener_sweep`.
    log_nsr_min, log_nsr_max, log_nsr_step : float
        Positions of the slider over ``log10(NSR)``.
    """
    slider = Slider("log_nsr", log_nsr_min, log_nsr_max, log_nsr_step,
                    log_nsr_min + log_nsr_step * round((log_nsr_max - log_nsr_min)
                                                       / log_nsr_step / 2),
                    label="log10 NSR", fmt=".2f")
    positions = np.array(slider.positions, dtype=float)
    clean = crop(image, top, left, size).astype(np.float64)
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
    )


def _clip(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 1.0).astype(np.float32)


@register("restoration.compare_denoisers")
def denoiser_comparison_demo(
    denoisers=("dncnn-b", "unet-denoise"),
    image: str = "set12/02",
    top: int = 64,
    left: int = 64,
    size: int = 128,
    sigmas=(15, 25, 35, 50),
    seed: int = 0,
    weights_dir=None,
) -> Demo:
    """Noisy crop and the output of each denoiser, with PSNR, for a choice of noise levels."""
    clean = crop(image, top, left, size)
    nets = {name: weightstore.load_pretrained(name, weights_dir=weights_dir) for name in denoisers}
    sigmas = tuple(int(s) for s in sigmas)

    def compute(sigma):
        noisy = Degradation().image(clean, sigma, seed)
        out = {"noisy": _clip(noisy), "psnr_noisy": psnr_8bit(noisy, clean), "clean": clean}
        for k, (name, net) in enumerate(nets.items()):
            restored = denoise(net, noisy)
            out[f"out{k}"] = _clip(restored)
            out[f"psnr{k}"] = psnr_8bit(restored, clean)
        return out

    panels = [Panel([Image("clean")], title="clean", axes=False),
              Panel([Image("noisy")], title="noisy, {psnr_noisy:.2f} dB", axes=False)]
    panels += [Panel([Image(f"out{k}")], title=f"{name}, {{psnr{k}:.2f}} dB", axes=False)
               for k, name in enumerate(nets)]
    return Demo(
        "Two blind denoisers on the same noisy image",
        [Choice("sigma", sigmas, 25 if 25 in sigmas else sigmas[0], label="noise σ (of 255)")],
        compute,
        panels,
        alt=(f"A {size} by {size} pixel crop of test image {image}: the clean crop, the crop with Gaussian noise "
             f"of the chosen level, and the outputs of {' and '.join(nets)}, each titled with its PSNR."),
        height=230,
    )


def load_wiener_network(name: str, weights_dir=None):
    """Load a network trained on Wiener output; return it with its blur spec and NSR."""
    net = weightstore.load_pretrained(name, weights_dir=weights_dir)
    return (net, *weightstore.wiener_training(net.pretrained, name))


def _deblur_networks(network: str, wiener_network: str, weights_dir=None):
    wnet, spec, nsr = load_wiener_network(wiener_network, weights_dir)
    return weightstore.load_pretrained(network, weights_dir=weights_dir), wnet, spec, nsr


@register
def deblur_demo(
    network: str = "unet-deblur",
    wiener_network: str = "unet-wiener",
    image: str = "set12/02",
    top: int = 64,
    left: int = 64,
    size: int = 128,
    noise_levels=(0.005, 0.01, 0.02),
    seed: int = 0,
    weights_dir=None,
) -> Demo:
    """Blurred noisy crop, Wiener deconvolution, network only and Wiener + network, per noise level.

    The crop is blurred circularly on its own (the forward model the networks were trained
    with); kernel and NSR come from the networks' manifests.
    """
    clean = crop(image, top, left, size)
    net, wnet, spec, nsr = _deblur_networks(network, wiener_network, weights_dir)
    levels = tuple(float(v) for v in noise_levels)

    def compute(noise):
        sigma = 255.0 * noise
        observed = Degradation(spec).image(clean, sigma, seed)
        wiener = Degradation(spec, nsr).image(clean, sigma, seed)
        outputs = {"observed": observed, "wiener": wiener, "network": denoise(net, observed),
                   "both": denoise(wnet, wiener)}
        result = {key: _clip(value) for key, value in outputs.items()}
        result.update({f"psnr_{key}": psnr_8bit(value, clean) for key, value in outputs.items()})
        return result

    titles = {"observed": "blurred + noise", "wiener": "Wiener", "network": "network only", "both": "Wiener + network"}
    panels = [Panel([Image(key)], title=f"{title}, {{psnr_{key}:.2f}} dB", axes=False) for key, title in titles.items()]
    return Demo(
        f"Deblurring ({spec} blur): Wiener, a network, or both",
        [Choice("noise", levels, levels[len(levels) // 2], label="noise std")],
        compute,
        panels,
        alt=(f"A {size} by {size} pixel crop of test image {image} blurred by the {spec} kernel with noise of the chosen "
             "standard deviation, then restored by Wiener deconvolution, by a U-Net that sees the blurred image, and by "
             "a U-Net that sees the Wiener output; each panel is titled with its PSNR."),
        height=230,
    )


def deblur_table(record: dict):
    """The deblurring results (``results.load("deblurring")``) as a :class:`nnimaging.denoising.Table`.

    Rows: the blurred, noisy input, then Wiener only, network only and Wiener + network;
    one column per noise level; mean PSNR in dB with two decimals.
    """
    rows = record.get("rows") if isinstance(record, dict) else None
    if not rows:
        raise ValueError("the deblurring record has no rows (expected the output of experiments.measure_deblurring)")
    levels = sorted({float(r["noise"]) for r in rows})
    table = {(r["method"], float(r["noise"])): float(r["mean_psnr"]) for r in rows}
    columns = [f"σ = {lv:g}" for lv in levels]
    body = []
    observed = record.get("blurred_noisy_psnr")
    if observed:
        body.append(("blurred + noisy input", [f"{observed[str(lv)]:.2f}" for lv in levels]))
    for method, label in DEBLUR_METHODS.items():
        if any(key[0] == method for key in table):
            body.append((label, ["–" if (method, lv) not in table else f"{table[(method, lv)]:.2f}" for lv in levels]))
    caption = (f"Mean PSNR in dB on {record.get('dataset', 'the test set')}, blur {record.get('blur')}, "
               f"Wiener NSR {record.get('wiener_nsr')} (results/deblurring.json).")
    return Table(columns, body, caption, row_header="method")
