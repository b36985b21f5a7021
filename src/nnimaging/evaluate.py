"""Evaluate denoisers with the standard protocol of the denoising literature.

Protocol (as in the test code of DnCNN, Zhang et al. 2017):

1. the clean test image ``x`` (8-bit values scaled to [0, 1]) gets white Gaussian noise of
   standard deviation ``sigma / 255``, drawn in float64 from ``numpy.random.default_rng(seed)``
   **re-seeded for every image** (so an image's noisy version does not depend on which
   other images are evaluated), and is **not clipped**;
2. the denoiser sees the float32 noisy image;
3. its output is clipped to [0, 1] and rounded to 8 bits;
4. PSNR with peak 255 against the 8-bit clean image, **averaged over images**.

Command line::

    python -m nnimaging.evaluate dncnn-s25 --dataset bsd68 --sigma 25 --out results.json
    python -m nnimaging.evaluate runs/dncnn-s25 --dataset set12 --sigma 25
    python -m nnimaging.evaluate noisy --dataset bsd68 --sigma 25
    python -m nnimaging.evaluate gaussian --gaussian-width 1.0 --dataset bsd68 --sigma 25

``MODEL`` is a shipped name (see :func:`nnimaging.weightstore.available`), a training run
directory or checkpoint file (``runs/NAME/`` or ``runs/NAME/checkpoint.pt``), or one of
the baselines ``noisy`` (returns its input) and ``gaussian`` (a Gaussian filter).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import _checks, checkpoint, data, models, weightstore
from .degrade import Degradation, gaussian_blur
from .metrics import psnr

__all__ = [
    "NoisyBaseline",
    "GaussianFilterDenoiser",
    "baseline",
    "to_8bit",
    "psnr_8bit",
    "denoise",
    "evaluate_denoiser",
    "load_model",
    "main",
]


# ----------------------------------------------------------------------------------------
# baselines with the models' call convention
# ----------------------------------------------------------------------------------------


class NoisyBaseline(nn.Module):
    """The "do nothing" denoiser: returns its (checked) input. Its PSNR is that of the noisy image."""

    def __init__(self):
        super().__init__()
        self.config = {"architecture": "noisy", "kwargs": {}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        models.check_images(x, 1)
        return x.clone()


class GaussianFilterDenoiser(nn.Module):
    """Denoise by a Gaussian low-pass filter of standard deviation ``width`` pixels (reflected borders)."""

    def __init__(self, width: float = 1.0):
        super().__init__()
        if not width >= 0:
            raise ValueError(f"width must be >= 0 (pixels), got {width}")
        self.width = float(width)
        self.config = {"architecture": "gaussian", "kwargs": {"width": self.width}}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        models.check_images(x, 1)
        return gaussian_blur(x, self.width)


def baseline(name: str, width: float = 1.0) -> nn.Module:
    """``baseline("noisy")`` or ``baseline("gaussian", width=1.0)``: a reference denoiser."""
    if name == "noisy":
        return NoisyBaseline()
    if name == "gaussian":
        return GaussianFilterDenoiser(width)
    raise ValueError(f"unknown baseline {name!r}; expected 'noisy' or 'gaussian'")


# ----------------------------------------------------------------------------------------
# the protocol
# ----------------------------------------------------------------------------------------


def to_8bit(image) -> np.ndarray:
    """Clip to [0, 1] and round to the 256 levels of an 8-bit image.

    Parameters
    ----------
    image : array or tensor, values nominally in [0, 1]

    Returns
    -------
    uint8 array of the same shape, ``round(255 * clip(image, 0, 1))``.
    """
    values = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image, dtype=np.float64)
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def psnr_8bit(estimate, clean) -> float:
    """PSNR (peak 255) of ``to_8bit(estimate)`` against ``to_8bit(clean)``, in dB."""
    return psnr(to_8bit(estimate).astype(np.float64), to_8bit(clean).astype(np.float64), peak=255.0)


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def denoise(model: nn.Module, noisy) -> np.ndarray:
    """Run a denoiser on one (H, W) image, without gradients, on the model's device.

    Parameters
    ----------
    model : nn.Module
        A denoiser with the book's call convention (``(N, 1, H, W)`` float32 in and out).
        It is put in eval mode (BatchNorm uses its running statistics).
    noisy : (H, W) float array

    Returns
    -------
    (H, W) float32 array, the model output (not clipped).
    """
    noisy = np.asarray(noisy)
    if noisy.ndim != 2:
        raise ValueError(f"expected one (H, W) image, got shape {noisy.shape}")
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32))[None, None].to(_device_of(model))
    with torch.inference_mode():
        out = model(x)
    return out[0, 0].float().cpu().numpy()


def evaluate_denoiser(
    model: nn.Module, images, sigma: float, seed: int = 0, names=None, progress: bool = False, degradation=None
) -> dict:
    """Mean PSNR of a denoiser on a set of clean images under the standard protocol.

    Parameters
    ----------
    model : nn.Module
        Denoiser (``(N, 1, H, W)`` float32 in and out); evaluated in eval mode.
    images : sequence of (H, W) float arrays in [0, 1]
        Clean test images (8-bit values / 255).
    sigma : float
        Noise standard deviation on the 0..255 scale.
    seed : int
        Seed of ``numpy.random.default_rng``, re-created for every image.
    names : sequence of str, optional
        Image names for the report (default ``"0", "1", ...``).
    progress : bool
        Show a tqdm bar.
    degradation : nnimaging.degrade.Degradation, optional
        What the model sees (default: noise only). With a blur, ``noisy_psnr`` is the PSNR of
        the model's input (the blurred noisy image, or its Wiener deconvolution).

    Returns
    -------
    dict
        ``{"sigma", "seed", "images": [{"name", "psnr", "noisy_psnr"}], "mean_psnr",
        "mean_noisy_psnr"}``; PSNRs in dB, peak 255.
    """
    images = list(images)
    if not images:
        raise ValueError("images is empty")
    degradation = Degradation() if degradation is None else degradation
    names = [str(i) for i in range(len(images))] if names is None else [str(n) for n in names]
    if len(names) != len(images):
        raise ValueError(f"got {len(names)} names for {len(images)} images")
    _checks.non_negative_number("sigma (0..255 scale)", sigma)
    for name, clean in zip(names, images):  # every image checked before any is evaluated
        clean = np.asarray(clean)
        if clean.ndim != 2 or not np.issubdtype(clean.dtype, np.floating):
            raise ValueError(f"image {name!r}: expected an (H, W) float array in [0, 1], got {clean.shape} {clean.dtype}")
        _checks.image_values(clean, f"image {name!r}")
    iterator = zip(names, images)
    if progress:
        iterator = tqdm(iterator, total=len(images), desc="evaluate")
    rows = []
    for name, clean in iterator:
        clean = np.asarray(clean)
        noisy = degradation.image(clean, sigma, seed)
        rows.append(
            {"name": name, "psnr": psnr_8bit(denoise(model, noisy), clean), "noisy_psnr": psnr_8bit(noisy, clean)}
        )
    return {
        "sigma": float(sigma),
        "seed": int(seed),
        "images": rows,
        "mean_psnr": float(np.mean([r["psnr"] for r in rows])),
        "mean_noisy_psnr": float(np.mean([r["noisy_psnr"] for r in rows])),
    }


# ----------------------------------------------------------------------------------------
# models and data from the command line
# ----------------------------------------------------------------------------------------


def load_model(spec: str, weights_dir=None, gaussian_width: float = 1.0) -> nn.Module:
    """Resolve ``MODEL`` of the command line to a denoiser in eval mode on the CPU.

    Parameters
    ----------
    spec : str
        ``"noisy"``, ``"gaussian"``, a run directory holding ``checkpoint.pt``, a checkpoint
        file written by :mod:`nnimaging.train`, or a pretrained name.
    weights_dir : path, optional
        Where pretrained names are looked up (default: the package's weights).
    gaussian_width : float
        Width of the ``"gaussian"`` baseline, in pixels.
    """
    if spec in ("noisy", "gaussian"):
        return baseline(spec, gaussian_width)
    path = Path(spec)
    if path.is_dir():
        path = path / checkpoint.FILE
        if not path.is_file():
            raise FileNotFoundError(f"{spec} is a directory without checkpoint.pt (expected a training run directory)")
    if path.is_file():
        return checkpoint.load_model(path)  # the checkpoint's format is nnimaging.checkpoint's
    return weightstore.load_pretrained(spec, weights_dir=weights_dir)


def _load_dataset(name: str | None, data_dir) -> tuple[list[np.ndarray], list[str], str]:
    if data_dir is not None:
        images, names = data.load_image_dir(data_dir, return_names=True)
        return images, names, str(data_dir)
    images, names = data.load_images(name, return_names=True)
    return images, names, name


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m nnimaging.evaluate",
        description="PSNR of a denoiser on a test set (noise in float, re-seeded per image, output clipped "
        "and rounded to 8 bits, PSNR with peak 255 averaged over images).",
    )
    p.add_argument("model", help="pretrained name, run directory or checkpoint.pt, or 'noisy' / 'gaussian'")
    p.add_argument("--dataset", default="bsd68", choices=["bsd68", "set12", "train400"], help="test set (default bsd68)")
    p.add_argument("--data-dir", default=None, help="read the test images from this directory instead of --dataset")
    p.add_argument("--sigma", type=float, default=25.0, help="noise standard deviation on the 0..255 scale")
    p.add_argument("--seed", type=int, default=0, help="noise seed (numpy default_rng, re-seeded per image)")
    p.add_argument("--gaussian-width", type=float, default=1.0, help="std in pixels of the 'gaussian' baseline")
    p.add_argument("--weights-dir", default=None, help="directory with manifest.json (default: the package's)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> dict:
    """Command-line entry point; returns the results dict it prints and writes."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    # checked at the door: nothing is loaded or evaluated with a bad count or an unwritable --out
    if args.limit is not None:
        _checks.positive_int("--limit", args.limit)
    _checks.non_negative_number("--sigma", args.sigma)
    _checks.non_negative_number("--gaussian-width", args.gaussian_width)
    if args.out:
        _checks.writable_file(args.out, "--out")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise _checks.UsageError(f"--data-dir {args.data_dir}: no such folder (expected a folder of image files)")
    model = load_model(args.model, args.weights_dir, args.gaussian_width).to(args.device)
    images, names, dataset = _load_dataset(args.dataset, args.data_dir)
    if args.limit is not None:
        images, names = images[: args.limit], names[: args.limit]
    result = evaluate_denoiser(model, images, args.sigma, args.seed, names, progress=not args.no_progress)
    info = {"spec": args.model, **getattr(model, "config", {})}
    if hasattr(model, "pretrained"):
        info["training"] = model.pretrained.get("training", {})
        info["sha256"] = model.pretrained.get("sha256")
    if hasattr(model, "checkpoint_step"):
        info["checkpoint_step"] = model.checkpoint_step
    device = torch.device(args.device)
    result = {
        "model": info,
        "dataset": dataset,
        **result,
        "command": "python -m nnimaging.evaluate " + shlex.join(argv),
        "torch": str(torch.__version__),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})",
    }
    print(
        f"{args.model} on {dataset} ({len(images)} images), sigma {args.sigma:g}: "
        f"mean PSNR {result['mean_psnr']:.2f} dB (noisy input {result['mean_noisy_psnr']:.2f} dB)"
    )
    if args.out:
        _checks.atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    _checks.run_cli(main, prog="python -m nnimaging.evaluate")
