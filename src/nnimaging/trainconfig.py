"""The settings of a training run of :mod:`nnimaging.train`: defaults, checks and command line.

:data:`DEFAULTS` holds every setting with the paper's value where it has one; :func:`settings`
completes and checks a settings dict before any work (each bad value fails with one line naming
it); :func:`config_from_args` maps the flags of ``python -m nnimaging.train`` onto the same names.
``--init`` (start from other weights) is checked here too: the file must fit the model, and its
SHA-256 and training record go into the run's own record.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path

import torch

from . import _checks, models, weightstore
from ._checks import UsageError
from .degrade import Degradation

__all__ = ["DEFAULTS", "SCHEDULES", "settings", "init_state", "config_from_args"]

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
"""Default settings of :func:`nnimaging.train.train` (the command-line flags mirror them).

DnCNN-S in the paper: 17 layers, 40x40 patches, batch 128, 50 epochs of 1600 batches
(80,000 steps), sigma 25. DnCNN-B (blind): 20 layers, sigma in [0, 55].
"""

SCHEDULES = ("cosine", "step", "exp", "constant")
"""The learning-rate schedules of :func:`nnimaging.train.lr_at`."""


def settings(config: dict | None) -> dict:
    """The settings of :func:`nnimaging.train.train`, completed from :data:`DEFAULTS` and checked before any work.

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
    if cfg["schedule"] not in SCHEDULES:
        raise UsageError(f"schedule must be one of {SCHEDULES}, got {cfg['schedule']!r}")
    if cfg["minutes_policy"] not in ("fit", "stop"):
        raise UsageError(f"minutes_policy must be 'fit' or 'stop', got {cfg['minutes_policy']!r}")
    if cfg["amp"] not in ("auto", "bf16", "none"):
        raise UsageError(f"amp must be 'auto', 'bf16' or 'none', got {cfg['amp']!r}")
    if cfg["val"] not in ("set12", "bsd68", "heldout", "none"):
        raise UsageError(f"val must be 'set12', 'bsd68', 'heldout' or 'none', got {cfg['val']!r}")
    if cfg["export"] is not None and not weightstore._NAME_RE.match(str(cfg["export"])):
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
                             "nnimaging.weightstore.available())")
        entry_path = path.parent / "manifest_entry.json"  # a run folder's record of how the weights were made
        entry = None
        if entry_path.is_file():
            entry = json.loads(entry_path.read_text())
            if entry.get("file") != path.name:
                entry = None
        return path, entry
    entries = {e["name"]: e for e in weightstore.available(published=False)}
    if spec not in entries:
        raise UsageError(f"init {spec!r}: not a weights file nor a name of the book's weights "
                         f"(available: {', '.join(sorted(entries)) or 'none'})")
    return weightstore.WEIGHTS_DIR / entries[spec]["file"], entries[spec]


def _init_record(spec: str, model) -> dict:
    """What a run started from (``--init``): the file's SHA-256 and, when known, how it was trained.

    Checked before any work: a file that does not fit the model fails here, naming both.
    """
    path, entry = _init_source(spec)
    init_state(spec, model, "cpu")
    record = {"from": spec, "sha256": weightstore.sha256_file(path)}
    if entry is not None:
        if entry.get("sha256") not in (None, record["sha256"]):
            raise UsageError(f"init {spec}: {path} has sha256 {record['sha256']} but its manifest says "
                             f"{entry['sha256']}; the file is corrupted or the manifest out of date")
        record["training"] = entry.get("training", {})
    return record


def init_state(spec: str, model, device) -> dict:
    """The state dict of ``--init``, checked against ``model``."""
    path, _ = _init_source(spec)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise UsageError(f"init {spec}: cannot read {path} as a state dict ({err})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a checkpoint or a snapshot
    try:
        weightstore.check_state_dict(model, state, str(path))
    except ValueError as err:
        raise UsageError(f"init {spec}: {err}") from None
    return state


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
    g.add_argument("--schedule", choices=SCHEDULES, default=d["schedule"])
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
    """Parse command-line arguments into the settings dict of :func:`nnimaging.train.train`."""
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

