"""Trained restoration networks side by side: the figures and tables of chapter 6.

Two live demos with precomputed frames (the networks run in Python when the cell runs; the
static page shows the stored results):

* :func:`denoiser_comparison_demo`: the blind DnCNN and the U-Net on the same noisy crop, at
  several noise levels;
* :func:`deblur_demo`: a blurred, noisy crop restored by Wiener deconvolution, by a network
  that sees the blurred image, and by a network that sees the Wiener output.

:func:`deblur_table` formats the table that ``python -m nnimaging.experiments
deblur-table`` stores in ``nnimaging/results/deblurring.json``.
"""

from __future__ import annotations

import numpy as np

from . import models
from .degrade import Degradation
from .demo import Choice, Demo, Image, Panel, register
from .evaluate import denoise, psnr_8bit

__all__ = ["crop", "denoiser_comparison_demo", "deblur_demo", "deblur_table", "DEBLUR_METHODS"]

DEBLUR_METHODS = {"wiener": "Wiener only", "network": "network only", "wiener+network": "Wiener + network"}
"""Row labels of the deblurring table, in order."""


def crop(image: str = "set12/02", top: int = 64, left: int = 64, size: int = 128) -> np.ndarray:
    """A ``size`` x ``size`` crop of a test image named ``"DATASET/STEM"`` (float32 in [0, 1])."""
    from . import data

    dataset, _, stem = image.partition("/")
    images, names = data.load_images(dataset, return_names=True)
    if stem not in names:
        raise ValueError(f"no image {stem!r} in {dataset} (have {', '.join(names)})")
    full = images[names.index(stem)]
    if top < 0 or left < 0 or top + size > full.shape[0] or left + size > full.shape[1]:
        raise ValueError(f"crop {size}x{size} at ({top}, {left}) does not fit in {image} of shape {full.shape}")
    return np.ascontiguousarray(full[top : top + size, left : left + size])


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
    nets = {name: models.load_pretrained(name, weights_dir=weights_dir) for name in denoisers}
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
        "restoration.compare_denoisers",
        "Two blind denoisers on the same noisy image",
        [Choice("sigma", sigmas, 25 if 25 in sigmas else sigmas[0], label="noise σ (of 255)")],
        compute,
        panels,
        alt=(f"A {size} by {size} pixel crop of test image {image}: the clean crop, the crop with Gaussian noise "
             f"of the chosen level, and the outputs of {' and '.join(nets)}, each titled with its PSNR."),
        height=230,
        args={"denoisers": list(denoisers), "image": image, "top": top, "left": left, "size": size,
              "sigmas": list(sigmas), "seed": seed, "weights_dir": None if weights_dir is None else str(weights_dir)},
    )


def _deblur_networks(network: str, wiener_network: str, weights_dir=None):
    net = models.load_pretrained(network, weights_dir=weights_dir)
    wnet = models.load_pretrained(wiener_network, weights_dir=weights_dir)
    d = wnet.pretrained["training"].get("degradation", {})
    if d.get("task") != "deblur" or d.get("wiener_nsr") is None:
        raise ValueError(f"{wiener_network} was not trained on Wiener output (its degradation is {d})")
    return net, wnet, d["blur"], float(d["wiener_nsr"])


@register("restoration.deblur")
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
        "restoration.deblur",
        f"Deblurring ({spec} blur): Wiener, a network, or both",
        [Choice("noise", levels, levels[len(levels) // 2], label="noise std")],
        compute,
        panels,
        alt=(f"A {size} by {size} pixel crop of test image {image} blurred by the {spec} kernel with noise of the chosen "
             "standard deviation, then restored by Wiener deconvolution, by a U-Net that sees the blurred image, and by "
             "a U-Net that sees the Wiener output; each panel is titled with its PSNR."),
        height=230,
        args={"network": network, "wiener_network": wiener_network, "image": image, "top": top, "left": left,
              "size": size, "noise_levels": list(levels), "seed": seed,
              "weights_dir": None if weights_dir is None else str(weights_dir)},
    )


def deblur_table(record: dict):
    """The deblurring results (``results.load("deblurring")``) as a :class:`nnimaging.denoising.Table`.

    Rows: the blurred, noisy input, then Wiener only, network only and Wiener + network;
    one column per noise level; mean PSNR in dB with two decimals.
    """
    from .denoising import Table

    rows = record.get("rows") if isinstance(record, dict) else None
    if not rows:
        raise ValueError("the deblurring record has no rows (expected the output of experiments.deblur_table)")
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
