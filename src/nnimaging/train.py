"""Train the book's denoisers: ``python -m nnimaging.train {dncnn,unet} [options]``.

The recipe follows DnCNN (Zhang et al., IEEE TIP 2017): 40x40 patches cropped at random
from the 400 training images (Train400), each flipped/rotated by one of the 8 symmetries
of the square, white Gaussian noise at a fixed level (``--sigma 25``, 0..255 scale) or at
a level drawn per patch (blind, ``--sigma-range 0 55``), MSE loss between the denoised
patch and the clean one, Adam.

Written to be fast on a GPU without a DataLoader: the whole training set sits on the
device as one tensor; patch positions, symmetries and noise are drawn there at every
step (a single gather per batch). bf16 autocast and channels-last on CUDA, optional
``torch.compile`` (``--compile``). Under ``torchrun`` each process trains on its own
patches (seed offset by rank) with DistributedDataParallel; only rank 0 writes.

Outputs in ``--out`` (default ``runs/ARCH``):

* ``checkpoint.pt``: model, optimizer, step, random generator states, settings
  (``--resume`` continues from it; loadable with ``torch.load(..., weights_only=True)``);
* ``log.jsonl``: one JSON object per line (``step``, ``loss``, ``lr``, ``patches_per_s``,
  ``elapsed_s``; ``val_psnr`` when validated);
* at the end, ``NAME.pt`` (the weights) and ``manifest_entry.json``; ``--export NAME``
  also writes them into the package's ``weights/`` directory and its manifest.

Examples::

    python -m nnimaging.train dncnn --sigma 25 --out runs/dncnn-s25 --minutes 9
    python -m nnimaging.train dncnn --depth 20 --sigma-range 0 55 --out runs/dncnn-b
    torchrun --nproc-per-node 2 -m nnimaging.train dncnn --sigma 25
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import _checks, models
from ._checks import UsageError
from .degrade import Degradation
from .evaluate import denoise, load_image_dir, psnr_8bit

__all__ = [
    "DEFAULTS",
    "dihedral",
    "dihedral_offsets",
    "PatchSampler",
    "lr_at",
    "train",
    "TrainingInterrupted",
    "read_log_records",
    "main",
]

DEFAULTS = {
    "architecture": "dncnn",
    "model_kwargs": {},
    "dataset": "train400",
    "data_dir": None,
    "patch_size": 40,
    "batch_size": 128,
    "augment": True,
    "sigma": 25.0,
    "sigma_range": None,
    "blur": None,
    "wiener_nsr": None,
    "lr": 1e-3,
    "lr_final": 1e-5,
    "schedule": "cosine",
    "warmup_steps": 100,
    "weight_decay": 0.0,
    "max_steps": 80_000,
    "minutes": None,
    "minutes_policy": "fit",
    "stop_at_step": None,
    "val": "set12",
    "val_count": 4,
    "val_dir": None,
    "val_sigma": None,
    "val_seed": 0,
    "val_every": 2000,
    "log_every": 100,
    "ckpt_every": 5000,
    "ckpt_minutes": 5.0,
    "snapshot_minutes": None,
    "seed": 0,
    "device": "auto",
    "amp": "auto",
    "compile": False,
    "out": None,
    "resume": False,
    "overwrite": False,
    "export": None,
    "weights_dir": None,
    "init": None,
    "progress": True,
    "command": None,
}
"""Default settings of :func:`train` (the command-line flags mirror them).

DnCNN-S in the paper: 17 layers, 40x40 patches, batch 128, 50 epochs of 1600 batches
(80,000 steps), sigma 25. DnCNN-B (blind): 20 layers, sigma in [0, 55].
"""

_SCHEDULES = ("cosine", "step", "exp", "constant")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX tiles).

    Without those instructions PyTorch emulates bf16 and training is much slower than in float32
    (measured on a 2-core AVX2 AMD EPYC: 13x slower for the book's U-Net); with them, bf16
    autocast and channels_last train the book's networks 2-3x faster than float32.
    """
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def use_bf16(amp: str, device) -> bool:
    """Whether to train under bf16 autocast: ``amp`` is "bf16", "none" or "auto" (see ``--amp``)."""
    if amp not in ("auto", "bf16", "none"):
        raise ValueError(f"amp must be 'auto', 'bf16' or 'none', got {amp!r}")
    if amp != "auto":
        return amp == "bf16"
    return torch.device(device).type == "cuda" or (torch.device(device).type == "cpu" and cpu_has_native_bf16())


def _now() -> float:
    """Wall-clock seconds (one place, so that tests can replace the clock)."""
    return time.perf_counter()


# ----------------------------------------------------------------------------------------
# augmentation and patch sampling
# ----------------------------------------------------------------------------------------


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes of ``x``.

    ``k`` in 0..3 rotates by ``k`` quarter turns; ``k`` in 4..7 transposes first (a flip
    about the diagonal) and then rotates by ``k - 4`` quarter turns.
    """
    if not 0 <= int(k) < 8:
        raise ValueError(f"k must be in 0..7, got {k}")
    if k >= 4:
        x = x.transpose(-1, -2)
    return torch.rot90(x, int(k) % 4, dims=(-2, -1))


def dihedral_offsets(patch_size: int) -> torch.Tensor:
    """Source (row, column) of every output pixel of a patch, for each of the 8 symmetries.

    Returns
    -------
    (8, 2, p, p) int64 tensor ``T`` such that ``dihedral(P, k)[a, b] == P[T[k, 0, a, b], T[k, 1, a, b]]``
    for any ``p x p`` patch ``P``. Cropping and augmenting then become one gather.
    """
    p = int(patch_size)
    rows, cols = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    grid = torch.stack([rows, cols])  # (2, p, p): each pixel's own coordinates
    return torch.stack([dihedral(grid, k) for k in range(8)])


def _pack_images(images, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (H, W) images of possibly different sizes into one zero-padded (N, Hmax, Wmax) tensor."""
    arrays = [np.asarray(im) for im in images]
    if not arrays:
        raise ValueError("no training images")
    for i, a in enumerate(arrays):
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"training image {i}: expected an (H, W) float array in [0, 1], got {a.shape} {a.dtype}")
        if min(a.shape) < patch_size:
            raise ValueError(f"training image {i} of shape {a.shape} is smaller than the patch size {patch_size}")
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"training image {i}: values must be in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")
    hmax = max(a.shape[0] for a in arrays)
    wmax = max(a.shape[1] for a in arrays)
    data = torch.zeros(len(arrays), hmax, wmax, dtype=torch.float32)
    for i, a in enumerate(arrays):
        data[i, : a.shape[0], : a.shape[1]] = torch.from_numpy(a.astype(np.float32))
    sizes = torch.tensor([a.shape for a in arrays], dtype=torch.int64)
    return data, sizes


class PatchSampler:
    """Random training patches drawn on the device where the images are stored.

    Parameters
    ----------
    images : sequence of (H, W) float arrays in [0, 1]
        Training images (sizes may differ; each must be at least ``patch_size`` on both sides).
    patch_size : int
        Side of the square patches.
    device : torch.device
        Where the images are kept (the GPU during training).
    augment : bool
        Apply one of the 8 flips/rotations (uniformly at random) to each patch.
    """

    def __init__(self, images, patch_size: int, device="cpu", augment: bool = True):
        self.patch_size = int(patch_size)
        data, sizes = _pack_images(images, self.patch_size)
        self.device = torch.device(device)
        self.data = data.to(self.device)
        self.flat = self.data.view(-1)
        self.heights = sizes[:, 0].to(self.device)
        self.widths = sizes[:, 1].to(self.device)
        self.offsets = dihedral_offsets(self.patch_size).to(self.device)
        self.augment = bool(augment)

    def __len__(self) -> int:
        return self.data.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch of clean patches, ``(batch_size, 1, p, p)`` float32 on the device."""
        n, hmax, wmax = self.data.shape
        p, dev = self.patch_size, self.device
        index = torch.randint(0, n, (batch_size,), generator=generator, device=dev)
        span_y = self.heights[index] - p + 1
        span_x = self.widths[index] - p + 1
        # floor(u * span) for u uniform in [0, 1): a uniform integer in 0 .. span-1 per patch
        y = torch.minimum((torch.rand(batch_size, generator=generator, device=dev) * span_y).long(), span_y - 1)
        x = torch.minimum((torch.rand(batch_size, generator=generator, device=dev) * span_x).long(), span_x - 1)
        if self.augment:
            k = torch.randint(0, 8, (batch_size,), generator=generator, device=dev)
        else:
            k = torch.zeros(batch_size, dtype=torch.long, device=dev)
        table = self.offsets[k]  # (B, 2, p, p)
        rows = y.view(-1, 1, 1) + table[:, 0]
        cols = x.view(-1, 1, 1) + table[:, 1]
        flat_index = index.view(-1, 1, 1) * (hmax * wmax) + rows * wmax + cols
        return self.flat[flat_index].unsqueeze(1)


# ----------------------------------------------------------------------------------------
# learning-rate schedule
# ----------------------------------------------------------------------------------------


def lr_at(step: int, total_steps: int, lr: float, lr_final: float, schedule: str, warmup_steps: int = 0) -> float:
    """Learning rate used for optimisation step ``step`` (0-based) of ``total_steps``.

    * ``cosine``: from ``lr`` to ``lr_final`` along half a cosine;
    * ``exp``: geometric decay from ``lr`` to ``lr_final`` (DnCNN's log-spaced rates);
    * ``step``: ``lr``, divided by 10 after 50 % and again after 75 % of the steps;
    * ``constant``: ``lr``.

    A linear warm-up over the first ``warmup_steps`` steps multiplies any of them.
    """
    if schedule not in _SCHEDULES:
        raise ValueError(f"schedule must be one of {_SCHEDULES}, got {schedule!r}")
    t = min(max(step / max(total_steps, 1), 0.0), 1.0)
    if schedule == "cosine":
        rate = lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * t))
    elif schedule == "exp":
        rate = lr * (lr_final / lr) ** t
    elif schedule == "step":
        rate = lr * (0.1 if t >= 0.5 else 1.0) * (0.1 if t >= 0.75 else 1.0)
    else:
        rate = lr
    if warmup_steps and step < warmup_steps:
        rate *= (step + 1) / warmup_steps
    return rate


# ----------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------


def _unwrap(model):
    """The plain module inside DistributedDataParallel and/or torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def _settings(config: dict | None) -> dict:
    """The settings of :func:`train`, completed from :data:`DEFAULTS` and checked before any work.

    Every bad value raises :class:`nnimaging._checks.UsageError` (a ``ValueError``) naming the setting,
    what it expects and what it got; the model is built once here so that bad model arguments fail
    before the run folder is created.
    """
    cfg = dict(DEFAULTS)
    unknown = set(config or {}) - set(DEFAULTS)
    if unknown:
        raise UsageError(f"unknown training settings {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    cfg.update(config or {})
    cfg["model_kwargs"] = dict(cfg["model_kwargs"] or {})
    if cfg["architecture"] not in models.ARCHITECTURES:
        raise UsageError(f"architecture must be one of {sorted(models.ARCHITECTURES)}, got {cfg['architecture']!r}")
    if cfg["sigma_range"] is not None:
        try:
            lo, hi = (float(v) for v in cfg["sigma_range"])
        except (TypeError, ValueError):
            raise UsageError(f"sigma_range must be (low, high), got {cfg['sigma_range']!r}") from None
        if not 0 <= lo <= hi or not math.isfinite(hi):
            raise UsageError(f"sigma_range must be (low, high) with 0 <= low <= high, got {cfg['sigma_range']}")
        cfg["sigma_range"] = [lo, hi]
        cfg["sigma"] = None
    elif cfg["sigma"] is None or not isinstance(cfg["sigma"], (int, float)) or not 0 <= float(cfg["sigma"]) < math.inf:
        raise UsageError(f"sigma must be a number >= 0 (0..255 scale) unless sigma_range is given, got {cfg['sigma']}")
    else:
        cfg["sigma"] = float(cfg["sigma"])
    for key in ("patch_size", "batch_size", "max_steps", "log_every", "val_every", "ckpt_every", "val_count"):
        cfg[key] = _checks.positive_int(key, cfg[key])
    for key, minimum in (("warmup_steps", 0), ("stop_at_step", 1), ("seed", 0), ("val_seed", 0)):
        if cfg[key] is not None:
            cfg[key] = _checks.positive_int(key, cfg[key], minimum)
    for key in ("lr", "lr_final"):
        cfg[key] = _checks.positive_number(key, cfg[key])
    cfg["weight_decay"] = _checks.non_negative_number("weight_decay", cfg["weight_decay"])
    for key in ("minutes", "ckpt_minutes", "snapshot_minutes"):
        if cfg[key] is not None:
            cfg[key] = _checks.positive_number(key, cfg[key])
    if cfg["val_sigma"] is not None:
        cfg["val_sigma"] = _checks.non_negative_number("val_sigma", cfg["val_sigma"])
    if cfg["schedule"] not in _SCHEDULES:
        raise UsageError(f"schedule must be one of {_SCHEDULES}, got {cfg['schedule']!r}")
    if cfg["minutes_policy"] not in ("fit", "stop"):
        raise UsageError(f"minutes_policy must be 'fit' or 'stop', got {cfg['minutes_policy']!r}")
    if cfg["amp"] not in ("auto", "bf16", "none"):
        raise UsageError(f"amp must be 'auto', 'bf16' or 'none', got {cfg['amp']!r}")
    if cfg["val"] not in ("set12", "bsd68", "heldout", "none"):
        raise UsageError(f"val must be 'set12', 'bsd68', 'heldout' or 'none', got {cfg['val']!r}")
    if cfg["export"] is not None and not models._NAME_RE.match(str(cfg["export"])):
        raise UsageError(f"export name must use letters, digits, '_', '.', '-' (it names a file in the weights "
                         f"folder), got {cfg['export']!r}")
    if cfg["out"] is None:
        cfg["out"] = str(Path("runs") / (cfg["export"] or cfg["architecture"]))
    if Path(cfg["out"]).exists() and not Path(cfg["out"]).is_dir():
        raise UsageError(f"out {cfg['out']} is a file; expected a run folder")
    for key in ("data_dir", "val_dir"):
        if cfg[key] is not None and not Path(cfg[key]).is_dir():
            raise UsageError(f"{key} {cfg[key]}: no such folder (expected a folder of image files)")
    if cfg["weights_dir"] is not None and Path(cfg["weights_dir"]).exists() and not Path(cfg["weights_dir"]).is_dir():
        raise UsageError(f"weights_dir {cfg['weights_dir']} is a file; expected a folder")
    if cfg["val_sigma"] is None:
        if cfg["sigma"] is not None:
            cfg["val_sigma"] = cfg["sigma"]
        else:  # blind: 25 as in DnCNN-B when the range holds it, else the middle of the range
            lo, hi = cfg["sigma_range"]
            cfg["val_sigma"] = 25.0 if lo <= 25.0 <= hi else (lo + hi) / 2
    try:
        Degradation(cfg["blur"], cfg["wiener_nsr"])  # a bad kernel spec or NSR fails here, before any work
    except (TypeError, ValueError) as err:
        raise UsageError(str(err)) from None
    try:
        model = models.build_model(cfg["architecture"], **cfg["model_kwargs"])
    except (TypeError, ValueError) as err:
        raise UsageError(f"model settings {cfg['model_kwargs']} for {cfg['architecture']}: {err}") from None
    cfg["init_record"] = None
    if cfg["init"] is not None:
        cfg["init"] = str(cfg["init"])
        cfg["init_record"] = _init_record(cfg["init"], model)
    return cfg


def _init_source(spec: str) -> tuple[Path, dict | None]:
    """The weights file ``spec`` names (a path, or a name in the package's manifest) and its entry."""
    path = Path(spec)
    if path.suffix == ".pt" or path.is_file():
        if not path.is_file():
            raise UsageError(f"init {spec}: no such weights file (expected a .pt state dict or a name listed by "
                             "nnimaging.models.available())")
        entry_path = path.parent / "manifest_entry.json"  # a run folder's record of how the weights were made
        entry = None
        if entry_path.is_file():
            entry = json.loads(entry_path.read_text())
            if entry.get("file") != path.name:
                entry = None
        return path, entry
    entries = {e["name"]: e for e in models.available(published=False)}
    if spec not in entries:
        raise UsageError(f"init {spec!r}: not a weights file nor a name of the book's weights "
                         f"(available: {', '.join(sorted(entries)) or 'none'})")
    return models.WEIGHTS_DIR / entries[spec]["file"], entries[spec]


def _init_record(spec: str, model) -> dict:
    """What a run started from (``--init``): the file's SHA-256 and, when known, how it was trained.

    Checked before any work: a file that does not fit the model fails here, naming both.
    """
    path, entry = _init_source(spec)
    _init_state(spec, model, "cpu")
    record = {"from": spec, "sha256": models.sha256_file(path)}
    if entry is not None:
        if entry.get("sha256") not in (None, record["sha256"]):
            raise UsageError(f"init {spec}: {path} has sha256 {record['sha256']} but its manifest says "
                             f"{entry['sha256']}; the file is corrupted or the manifest out of date")
        record["training"] = entry.get("training", {})
    return record


def _init_state(spec: str, model, device) -> dict:
    """The state dict of ``--init``, checked against ``model``."""
    path, _ = _init_source(spec)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise UsageError(f"init {spec}: cannot read {path} as a state dict ({err})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a checkpoint or a snapshot
    try:
        models.check_state_dict(model, state, str(path))
    except ValueError as err:
        raise UsageError(f"init {spec}: {err}") from None
    return state


def _training_record(
    cfg: dict, step: int, total: int, world: int, device: torch.device, val_psnr, elapsed_s: float | None = None
) -> dict:
    noise = {"sigma": cfg["sigma"]} if cfg["sigma"] is not None else {"sigma_range": cfg["sigma_range"]}
    return {
        "degradation": Degradation(cfg["blur"], cfg["wiener_nsr"]).describe(),
        "dataset": cfg["data_dir"] or cfg["dataset"],
        "patch_size": cfg["patch_size"],
        "batch_size": cfg["batch_size"],
        "augment": "8 flips/rotations" if cfg["augment"] else "none",
        "noise": noise,
        "loss": "mse(output, clean)",
        "optimizer": "Adam",
        "lr": cfg["lr"],
        "lr_final": cfg["lr_final"],
        "schedule": cfg["schedule"],
        "warmup_steps": cfg["warmup_steps"],
        "weight_decay": cfg["weight_decay"],
        "steps": step,
        "total_steps": total,
        "completed": step >= total,
        "seed": cfg["seed"],
        "world_size": world,
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"),
        "elapsed_s": None if elapsed_s is None else round(float(elapsed_s), 1),
        "amp": "bf16" if use_bf16(cfg["amp"], device) else "none",
        "compile": bool(cfg["compile"]),
        "torch": str(torch.__version__),
        "val": {"set": cfg["val_dir"] or cfg["val"], "count": cfg["val_count"], "sigma": cfg["val_sigma"], "psnr": val_psnr},
        "command": cfg["command"],
        **({"init": cfg["init_record"]} if cfg.get("init_record") else {}),
    }


def _load_training_images(cfg: dict, images, val_images):
    """Training images and (clean) validation images following the settings."""
    if images is None:
        if cfg["data_dir"] is not None:
            images, _ = load_image_dir(cfg["data_dir"])
        else:
            from . import data

            images = data.load_images(cfg["dataset"])
    images = list(images)
    if val_images is None:
        if cfg["val_dir"] is not None:
            val_images = load_image_dir(cfg["val_dir"])[0][: cfg["val_count"]]
        elif cfg["val"] == "none":
            val_images = []
        elif cfg["val"] == "heldout":
            if len(images) <= cfg["val_count"]:
                raise UsageError(f"val_count {cfg['val_count']}: cannot hold out {cfg['val_count']} of "
                                 f"{len(images)} training images (expected fewer than {len(images)})")
            images, val_images = images[: -cfg["val_count"]], images[-cfg["val_count"] :]
        else:
            from . import data

            val_images = data.load_images(cfg["val"])[: cfg["val_count"]]
    return images, list(val_images)


_RESUME_SETTINGS = (
    "architecture", "model_kwargs", "dataset", "data_dir", "patch_size", "batch_size", "augment", "sigma",
    "sigma_range", "blur", "wiener_nsr", "lr", "lr_final", "schedule", "warmup_steps", "weight_decay", "max_steps",
    "seed", "val", "val_count", "val_dir", "val_sigma", "val_seed", "init",
)
"""Settings a resumed run must share with its checkpoint (the others: budget, logging, device, output)."""


def _changed_settings(saved: dict, cfg: dict) -> list[str]:
    """``"--flag SAVED (now NEW)"`` for each training setting that differs from the checkpoint's."""

    def same_path(a, b):
        return a == b or (a is not None and b is not None and Path(a).resolve() == Path(b).resolve())

    changed = []
    for key in _RESUME_SETTINGS:
        if key not in saved:  # a checkpoint of an older version: nothing to compare
            continue
        old, new = saved[key], cfg[key]
        if key in ("data_dir", "val_dir") and same_path(old, new):
            continue
        if old != new:
            flag = "model settings" if key == "model_kwargs" else "--" + key.replace("_", "-")
            changed.append(f"{flag} {old!r} (this command: {new!r})")
    return changed


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by SIGTERM or SIGINT after writing its checkpoint (``--resume`` continues it).

    A ``KeyboardInterrupt``, so code that catches Ctrl-C catches it; ``signum`` is the signal's number
    and the command line exits with status 128 + ``signum``.
    """

    def __init__(self, message: str, signum: int, step: int, checkpoint: Path):
        super().__init__(message)
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


def _read_log_for_resume(path: Path, step: int) -> list[dict]:
    """The records of a run's log up to ``step`` (later ones are redone from the checkpoint).

    A last line cut by a crash of an older version is dropped; any other unreadable line is an error.
    """
    if not path.is_file():
        return []
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise UsageError(f"training log {path}, line {i + 1}, is not JSON: {line[:60]!r}") from None
    return [r for r in records if not isinstance(r.get("step"), int) or r["step"] <= step]


# ----------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------



def read_log_records(path) -> list[dict]:
    """The records of a run's ``log.jsonl``, in order (one dict per line; see the module docstring).

    ``path`` is a run directory (``--out``) or the log file itself.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "log.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no training log {path} (expected a run directory of nnimaging.train)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

def train(config: dict | None = None, images=None, val_images=None) -> dict:
    """Train a denoiser; returns a summary (and writes checkpoint, log and weights to ``out``).

    Parameters
    ----------
    config : dict, optional
        Settings overriding :data:`DEFAULTS` (same names as the command-line flags, with
        ``_`` for ``-``; the model's constructor arguments go in ``model_kwargs``).
    images : sequence of (H, W) float arrays in [0, 1], optional
        Training images; default: ``config["data_dir"]`` or ``nnimaging.data.load_images(dataset)``.
    val_images : sequence of (H, W) float arrays in [0, 1], optional
        Clean validation images (noise is added with a fixed seed); default from ``config["val"]``.

    Returns
    -------
    dict
        ``step``, ``total_steps``, ``completed``, ``final_loss`` (mean of the last logging
        interval), ``val_psnr`` (last validation, dB), ``out`` (directory), ``weights`` (path
        of the final weights or None), ``entry`` (manifest entry or None).
    """
    cfg = _settings(config)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    distributed = world > 1
    if distributed:
        import torch.distributed as dist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available() and cfg["device"] in ("auto", "cuda"):
            torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")
    if cfg["device"] == "auto":
        device = torch.device(f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(cfg["device"])
        if device.type == "cuda" and device.index is None:
            device = torch.device(f"cuda:{torch.cuda.current_device()}")
    cuda = device.type == "cuda"
    use_amp = use_bf16(cfg["amp"], device)
    if cfg["batch_size"] % world:
        raise UsageError(f"batch_size {cfg['batch_size']} must be divisible by the number of processes {world}")
    local_batch = cfg["batch_size"] // world
    is_main = rank == 0
    out = Path(cfg["out"])
    ckpt_path = out / "checkpoint.pt"
    log_path = out / "log.jsonl"
    ckpt = None
    if cfg["resume"] and cfg["overwrite"]:
        raise UsageError("--resume and --overwrite contradict each other: pass one")
    if ckpt_path.exists() and not cfg["resume"] and not cfg["overwrite"]:
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue that run or --overwrite to start over")
    if cfg["resume"]:
        if ckpt_path.exists():  # read and compared before any work: a damaged file or other settings fail here
            ckpt = _checks.read_checkpoint(ckpt_path, ("model", "optimizer", "step", "rng", "config"))
            changed = _changed_settings(ckpt["config"], cfg)
            if changed:
                raise UsageError(f"{ckpt_path} was trained with other settings: {'; '.join(changed)}. Resume with the "
                                 "same settings, or start over with --overwrite")
        elif log_path.is_file() and log_path.stat().st_size:
            raise UsageError(f"--resume: {out} has a training log but no checkpoint.pt to continue from; "
                             "start over with --overwrite")
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # data
    train_images, val_clean = _load_training_images(cfg, images, val_images)
    sampler = PatchSampler(train_images, cfg["patch_size"], device, cfg["augment"])
    degradation = Degradation(cfg["blur"], cfg["wiener_nsr"])
    val_noisy = [degradation.image(im, cfg["val_sigma"], cfg["val_seed"]) for im in val_clean]

    # model, optimizer, random generator
    torch.manual_seed(cfg["seed"])
    model = models.build_model(cfg["architecture"], **cfg["model_kwargs"]).to(device)
    if cuda or use_amp:
        model = model.to(memory_format=torch.channels_last)
    if cfg["init"] is not None and ckpt is None:  # a resumed run has these weights' successors already
        model.load_state_dict(_init_state(cfg["init"], model, device))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg["seed"] + 1_000_003 * rank + 1)
    step, total, fitted, elapsed_before = 0, cfg["max_steps"], False, 0.0

    interval = None  # the loss sum and count of the logging interval a checkpoint cut
    if ckpt is not None:
        try:
            models.check_state_dict(model, ckpt["model"], str(ckpt_path))
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise UsageError(f"checkpoint {ckpt_path} does not fit this model and optimizer: {err}") from None
        step = int(ckpt["step"])
        if world == 1 and len(ckpt["rng"]) == 1 and "interval" in ckpt:
            interval = ckpt["interval"]
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        if ckpt.get("fitted"):
            total, fitted = min(cfg["max_steps"], int(ckpt["total_steps"])), True
        try:
            if len(ckpt["rng"]) != world:
                raise ValueError("saved by a different number of processes")
            generator.set_state(ckpt["rng"][rank])
        except (ValueError, RuntimeError) as err:  # other process count or device type: fresh distinct streams
            generator.manual_seed(cfg["seed"] + 1_000_003 * rank + 1 + 7919 * step)
            if is_main:
                print(f"random generator state not restored ({err}); reseeded", file=sys.stderr)
        if is_main:
            print(f"resuming {out} at step {step}", file=sys.stderr)
    elif cfg["resume"] and is_main:
        print(f"no checkpoint in {out}: starting from step 0", file=sys.stderr)
    # the run's log: kept in memory and rewritten atomically at every record; a resumed run
    # continues it (records after the checkpoint's step are redone, so they are dropped)
    log_records = _read_log_for_resume(log_path, step) if ckpt is not None and is_main else []
    if is_main:
        out.mkdir(parents=True, exist_ok=True)  # only now: bad settings or data leave no empty run folder

    raw = model
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    if cfg["compile"]:
        model = torch.compile(model)

    def validate() -> float | None:
        if not val_clean:
            return None
        raw.eval()
        scores = [psnr_8bit(denoise(raw, noisy), clean) for noisy, clean in zip(val_noisy, val_clean)]
        raw.train()
        return float(np.mean(scores))

    def save_checkpoint() -> None:
        state = generator.get_state()
        if distributed:
            states = [None] * world
            dist.all_gather_object(states, state)
        else:
            states = [state]
        if is_main:
            _checks.atomic_torch_save(
                {
                    "model": raw.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "step": step,
                    "total_steps": total,
                    "fitted": fitted,
                    "rng": states,
                    "elapsed_s": elapsed_before + _now() - start,
                    "interval": [loss_sum.detach().cpu().clone(), loss_count],
                    "config": cfg,
                    "torch": str(torch.__version__),
                },
                ckpt_path,
            )

    def save_snapshot() -> None:
        """The weights alone, named by step, with the training time so far (for PSNR-vs-time curves)."""
        if is_main:
            snap_dir = out / "snapshots"
            snap_dir.mkdir(exist_ok=True)
            _checks.atomic_torch_save(
                {"model": raw.state_dict(), "step": step, "elapsed_s": elapsed_before + _now() - start},
                snap_dir / f"step-{step:07d}.pt",
            )

    def log(record: dict) -> None:
        if is_main:
            log_records.append(record)
            write_log()

    def write_log() -> None:
        _checks.atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in log_records))

    pbar = None
    if is_main and cfg["progress"]:
        from tqdm.auto import tqdm

        pbar = tqdm(total=total, initial=step, desc=f"train {cfg['architecture']}", mininterval=2.0)

    sigma_lo, sigma_hi = cfg["sigma_range"] or (cfg["sigma"], cfg["sigma"])
    blind = cfg["sigma_range"] is not None
    stop_at = cfg["stop_at_step"]
    budget = None if cfg["minutes"] is None else 60.0 * float(cfg["minutes"])
    reserve = 0.0 if budget is None else min(60.0, 0.03 * budget + 5.0)  # time for validation and saving
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp)
    loss_sum = torch.zeros((), device=device)
    loss_count = 0
    if interval is not None:  # resume mid-interval: the next logged loss is the same as without the cut
        loss_sum += interval[0].to(device)
        loss_count = int(interval[1])
    last_loss = None
    val_psnr = None
    start = _now()
    interval_start, interval_step = start, step
    rate_start = None  # (time, step) after the first interval: excludes compilation
    stopped_by_time = False
    ckpt_period = None if cfg["ckpt_minutes"] is None else 60.0 * float(cfg["ckpt_minutes"])
    snap_period = None if cfg["snapshot_minutes"] is None else 60.0 * float(cfg["snapshot_minutes"])
    last_ckpt_time = start
    next_snapshot = None if snap_period is None else (math.floor(elapsed_before / snap_period) + 1) * snap_period

    # SIGTERM (a batch scheduler, `timeout`, a closing Binder) and SIGINT (Ctrl-C, a kernel interrupt)
    # stop the loop between two steps; the checkpoint is then written and TrainingInterrupted raised.
    # A second signal interrupts at once.
    stop_signal = None

    def on_signal(signum, frame):
        nonlocal stop_signal
        if stop_signal is not None:
            raise KeyboardInterrupt
        stop_signal = signum

    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            handlers[sig] = signal.signal(sig, on_signal)

    if is_main:
        write_log()  # the run has started: only now is an old log (--overwrite) replaced
        if cfg["overwrite"] and ckpt_path.exists():
            ckpt_path.unlink()
    model.train()
    try:
        while step < total and (stop_at is None or step < stop_at):
            if distributed and step % cfg["log_every"] == 0:  # every process stops at the same step
                flag = torch.tensor(float(stop_signal or 0), device=device)
                dist.all_reduce(flag, op=dist.ReduceOp.MAX)
                stop_signal = int(flag.item()) or None
            if stop_signal is not None and (not distributed or step % cfg["log_every"] == 0):
                break
            rate = lr_at(step, total, cfg["lr"], cfg["lr_final"], cfg["schedule"], cfg["warmup_steps"])
            for group in optimizer.param_groups:
                group["lr"] = rate
            clean = sampler.sample(local_batch, generator)
            if blind:
                sigma = sigma_lo + (sigma_hi - sigma_lo) * torch.rand(local_batch, generator=generator, device=device)
            else:
                sigma = sigma_lo
            noisy = degradation.batch(clean, sigma, generator)
            if cuda or use_amp:
                noisy = noisy.contiguous(memory_format=torch.channels_last)
            with autocast:
                denoised = model(noisy)
            loss = F.mse_loss(denoised.float(), clean)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            loss_count += 1
            step += 1
            if pbar is not None:
                pbar.update(1)

            at_end = step >= total or (stop_at is not None and step >= stop_at)
            if step % cfg["log_every"] == 0 or at_end:
                if distributed:  # the mean over all processes
                    dist.all_reduce(loss_sum)
                    loss_sum /= world
                last_loss = loss_sum.item() / loss_count  # the only synchronisation of the loop
                now = _now()
                record = {
                    "step": step,
                    "loss": last_loss,
                    "lr": rate,
                    "patches_per_s": (step - interval_step) * cfg["batch_size"] / max(now - interval_start, 1e-9),
                    "elapsed_s": elapsed_before + now - start,
                }
                loss_sum.zero_()
                loss_count = 0
                interval_start, interval_step = now, step
                if budget is not None:
                    # rank 0 decides for everyone: stop now, and (policy "fit") how many steps fit
                    decision = torch.zeros(2, dtype=torch.float64, device=device)
                    if is_main:
                        used = now - start
                        if used >= budget - reserve:
                            decision[0] = 1.0
                        decision[1] = total
                        if cfg["minutes_policy"] == "fit":
                            if rate_start is None:
                                rate_start = (now, step)
                            elif step > rate_start[1]:
                                steps_per_s = (step - rate_start[1]) / (now - rate_start[0])
                                reachable = step + int(steps_per_s * max(budget - reserve - used, 0.0))
                                decision[1] = max(step, min(cfg["max_steps"], reachable))
                    if distributed:
                        dist.broadcast(decision, 0)
                    if cfg["minutes_policy"] == "fit" and int(decision[1]) != total:
                        total, fitted = int(decision[1]), True
                        if pbar is not None:
                            pbar.total = total
                            pbar.refresh()
                    if decision[0] > 0 and step < total:
                        stopped_by_time = True
                    record["total_steps"] = total
                if pbar is not None:
                    pbar.set_postfix(loss=f"{last_loss:.3g}", refresh=False)
                log(record)
                if stopped_by_time:
                    break
            if step % cfg["val_every"] == 0 and step < total and is_main:
                val_psnr = validate()
                log({"step": step, "val_psnr": val_psnr})
            if step % cfg["ckpt_every"] == 0 and step < total:
                save_checkpoint()
                last_ckpt_time = _now()
            elif ckpt_period is not None and step % cfg["log_every"] == 0 and _now() - last_ckpt_time >= ckpt_period:
                save_checkpoint()  # by time too: an interruption loses at most ckpt_minutes
                last_ckpt_time = _now()
            if next_snapshot is not None and step % cfg["log_every"] == 0 and elapsed_before + _now() - start >= next_snapshot:
                save_snapshot()
                next_snapshot += snap_period
    except KeyboardInterrupt:
        if not distributed:
            save_checkpoint()
            print(f"interrupted: checkpoint at step {step} saved in {ckpt_path}", file=sys.stderr)
        raise
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if pbar is not None:
            pbar.close()

    if stop_signal is not None:
        save_checkpoint()
        name = signal.Signals(stop_signal).name
        log({"step": step, "interrupted": name})
        message = f"{name}: stopped at step {step} of {total}; checkpoint saved in {ckpt_path} (continue with --resume)"
        if is_main:
            print(message, file=sys.stderr)
        if distributed:
            dist.barrier()
            dist.destroy_process_group()
        raise TrainingInterrupted(message, stop_signal, step, ckpt_path)

    save_checkpoint()
    if snap_period is not None:
        save_snapshot()
    completed = step >= total
    weights_path, entry = None, None
    if is_main:
        val_psnr = validate()
        log({"step": step, "val_psnr": val_psnr, "final": True, "completed": completed})
        name = cfg["export"] or out.name
        record = _training_record(cfg, step, total, world, device, val_psnr, elapsed_before + _now() - start)
        entry = models.save_pretrained(raw, name, record, weights_dir=out, update_manifest=False)
        weights_path = out / entry["file"]
        _checks.atomic_write_json(out / "manifest_entry.json", entry)
        if cfg["export"]:
            if completed:
                models.save_pretrained(raw, cfg["export"], record, weights_dir=cfg["weights_dir"])
                where = cfg["weights_dir"] or models.WEIGHTS_DIR
                print(f"exported {cfg['export']} to {where}", file=sys.stderr)
            else:
                print(
                    f"not exported: stopped at step {step} of {total}; continue with --resume to finish",
                    file=sys.stderr,
                )
        msg = f"step {step}/{total}: loss {last_loss if last_loss is not None else float('nan'):.4g}"
        if val_psnr is not None:
            msg += f", validation PSNR {val_psnr:.2f} dB ({cfg['val_dir'] or cfg['val']}, sigma {cfg['val_sigma']:g})"
        print(msg + ("" if completed else " (stopped early; resume with --resume)"), file=sys.stderr)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return {
        "step": step,
        "total_steps": total,
        "completed": completed,
        "final_loss": last_loss,
        "val_psnr": val_psnr,
        "out": str(out),
        "weights": str(weights_path) if weights_path else None,
        "entry": entry,
        "stopped_by_time": stopped_by_time,
    }


# ----------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m nnimaging.train",
        description="Train a denoiser or deblurring network (DnCNN or U-Net) on Train400 patches.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("architecture", choices=sorted(models.ARCHITECTURES))
    g = p.add_argument_group("model")
    g.add_argument("--depth", type=int, default=None, help="layers (dncnn, default 17) or downsamplings (unet, default 3)")
    g.add_argument("--width", type=int, default=None, help="feature maps (dncnn default 64, unet default 32)")
    g.add_argument("--bias", action="store_true",
                   help="dncnn: bias in the first and last convolutions (in every one with --no-batch-norm)")
    g.add_argument("--upsample", choices=["transpose", "bilinear", "nearest"], default=None, help="unet: upsampling")
    g.add_argument("--no-batch-norm", action="store_true", help="no BatchNorm layers")
    g.add_argument("--no-residual", action="store_true", help="predict the clean image instead of the noise")
    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d["dataset"], choices=["train400"], help="training set")
    g.add_argument("--data-dir", default=None, help="train on the images of this directory instead")
    g.add_argument("--patch-size", type=int, default=d["patch_size"])
    g.add_argument("--no-augment", action="store_true", help="no flips/rotations")
    g.add_argument("--sigma", type=float, default=d["sigma"], help="noise std, 0..255 scale")
    g.add_argument("--sigma-range", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="blind training: noise std uniform in [LOW, HIGH] per patch")
    g.add_argument("--blur", default=None, metavar="SPEC",
                   help="deblurring: blur each patch (circularly) with this kernel before the noise, "
                   "e.g. gaussian:2 or motion:9:30")
    g.add_argument("--wiener-nsr", type=float, default=None, metavar="NSR",
                   help="with --blur: the network sees the Wiener deconvolution (this NSR) of the observation")
    g = p.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=d["batch_size"], help="patches per step (all processes)")
    g.add_argument("--lr", type=float, default=d["lr"], help="Adam learning rate")
    g.add_argument("--lr-final", type=float, default=d["lr_final"], help="final rate of cosine/exp schedules")
    g.add_argument("--schedule", choices=_SCHEDULES, default=d["schedule"])
    g.add_argument("--warmup-steps", type=int, default=d["warmup_steps"])
    g.add_argument("--weight-decay", type=float, default=d["weight_decay"])
    g.add_argument("--max-steps", type=int, default=d["max_steps"], help="length of the schedule")
    g.add_argument("--minutes", type=float, default=None, help="wall-clock budget of this invocation's training loop (after loading data)")
    g.add_argument("--minutes-policy", choices=["fit", "stop"], default=d["minutes_policy"],
                   help="fit: shorten the schedule to end within --minutes; stop: just stop (resume later)")
    g.add_argument("--stop-at-step", type=int, default=None, help="stop at this step (schedule unchanged)")
    g.add_argument("--seed", type=int, default=d["seed"])
    g.add_argument("--init", default=None, metavar="WEIGHTS",
                   help="start from these weights (a name of the book's weights or a .pt file; a fresh optimizer and "
                        "schedule: a warm restart); the manifest records them and how they were trained")
    g = p.add_argument_group("validation and output")
    g.add_argument("--val", default=d["val"], choices=["set12", "bsd68", "heldout", "none"],
                   help="validation images: a test set, the last --val-count training images, or none")
    g.add_argument("--val-count", type=int, default=d["val_count"])
    g.add_argument("--val-dir", default=None, help="validate on the first --val-count images of this directory")
    g.add_argument("--val-sigma", type=float, default=None, help="default: --sigma, or 25 for blind training")
    g.add_argument("--val-every", type=int, default=d["val_every"])
    g.add_argument("--log-every", type=int, default=d["log_every"])
    g.add_argument("--ckpt-every", type=int, default=d["ckpt_every"])
    g.add_argument("--ckpt-minutes", type=float, default=d["ckpt_minutes"],
                   help="also checkpoint after this many minutes without one (0: never by time)")
    g.add_argument("--snapshot-minutes", type=float, default=None,
                   help="keep the weights every this many minutes of training in OUT/snapshots/ (for PSNR-vs-time curves)")
    g.add_argument("--out", default=None, help="run directory (default runs/EXPORT or runs/ARCH)")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    g.add_argument("--overwrite", action="store_true", help="start over even if OUT has a checkpoint")
    g.add_argument("--export", default=None, metavar="NAME", help="when finished, add the weights to the package")
    g.add_argument("--weights-dir", default=None, help="where --export writes (default: the package's weights/)")
    g = p.add_argument_group("hardware")
    g.add_argument("--device", default=d["device"], help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    g.add_argument("--amp", choices=["auto", "bf16", "none"], default=d["amp"], help="auto: bf16 autocast (and channels_last) on CUDA and on CPUs with native bf16 "
                   "instructions (AVX512-BF16 or AMX), float32 elsewhere")
    g.add_argument("--compile", action="store_true", help="torch.compile the model")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def config_from_args(argv) -> dict:
    """Parse command-line arguments into the settings dict of :func:`train`."""
    argv = list(argv)
    parser = _parser()
    a = parser.parse_args(argv)
    kwargs = {}
    if a.depth is not None:
        kwargs["depth"] = a.depth
    if a.width is not None:
        kwargs["width"] = a.width
    if a.no_residual:
        kwargs["residual"] = False
    if a.no_batch_norm:
        kwargs["batch_norm"] = False
    if a.architecture == "dncnn":
        if a.upsample is not None:
            parser.error("--upsample applies to unet only")
        if a.bias:
            kwargs["bias"] = True
    else:
        if a.bias:
            parser.error("--bias applies to dncnn only")
        if a.upsample is not None:
            kwargs["upsample"] = a.upsample
    return {
        "architecture": a.architecture,
        "model_kwargs": kwargs,
        "dataset": a.dataset,
        "data_dir": a.data_dir,
        "patch_size": a.patch_size,
        "batch_size": a.batch_size,
        "augment": not a.no_augment,
        "sigma": a.sigma,
        "sigma_range": a.sigma_range,
        "blur": a.blur,
        "wiener_nsr": a.wiener_nsr,
        "lr": a.lr,
        "lr_final": a.lr_final,
        "schedule": a.schedule,
        "warmup_steps": a.warmup_steps,
        "weight_decay": a.weight_decay,
        "max_steps": a.max_steps,
        "minutes": a.minutes,
        "minutes_policy": a.minutes_policy,
        "stop_at_step": a.stop_at_step,
        "val": a.val,
        "val_count": a.val_count,
        "val_dir": a.val_dir,
        "val_sigma": a.val_sigma,
        "val_every": a.val_every,
        "log_every": a.log_every,
        "ckpt_every": a.ckpt_every,
        "ckpt_minutes": a.ckpt_minutes or None,
        "snapshot_minutes": a.snapshot_minutes,
        "seed": a.seed,
        "device": a.device,
        "amp": a.amp,
        "compile": a.compile,
        "out": a.out,
        "resume": a.resume,
        "overwrite": a.overwrite,
        "export": a.export,
        "weights_dir": a.weights_dir,
        "init": a.init,
        "progress": not a.no_progress,
        "command": "python -m nnimaging.train " + shlex.join(argv),
    }


def main(argv=None) -> dict:
    """Command-line entry point (see the module docstring)."""
    return train(config_from_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    _checks.run_cli(main, prog="python -m nnimaging.train")
