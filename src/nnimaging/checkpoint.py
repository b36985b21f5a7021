"""The checkpoint of a training run: its one format, written and read here.

:func:`nnimaging.train.train` writes ``OUT/checkpoint.pt`` (and, with ``--snapshot-minutes``,
``OUT/snapshots/step-NNNNNNN.pt``); ``--resume`` and :func:`nnimaging.evaluate.load_model` read
it back. Both are dicts saved with ``torch.save`` that load with ``torch.load(...,
weights_only=True)``:

* checkpoint: ``model`` and ``optimizer`` (state dicts), ``step`` (optimisation steps done),
  ``total_steps`` and ``fitted`` (the schedule's length, and whether a time budget shortened it),
  ``rng`` (one random-generator state per process), ``elapsed_s`` (training seconds so far),
  ``interval`` (the loss sum and count of the logging interval the checkpoint cut), ``config``
  (the run's settings) and ``torch`` (its version);
* snapshot: ``model``, ``step`` and ``elapsed_s`` only (for PSNR-vs-time curves).
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import _checks, models
from ._checks import UsageError
from .weightstore import check_state_dict

__all__ = [
    "FILE",
    "RESUME_SETTINGS",
    "write",
    "write_snapshot",
    "read",
    "changed_settings",
    "read_for_resume",
    "restore",
    "load_model",
]

FILE = "checkpoint.pt"
"""The checkpoint's name in a run folder."""

RESUME_SETTINGS = (
    "architecture", "model_kwargs", "dataset", "data_dir", "patch_size", "batch_size", "augment", "sigma",
    "sigma_range", "blur", "wiener_nsr", "lr", "lr_final", "schedule", "warmup_steps", "weight_decay", "max_steps",
    "seed", "val", "val_count", "val_dir", "val_sigma", "val_seed", "init",
)
"""Settings a resumed run must share with its checkpoint (the others: budget, logging, device, output)."""

_RESUME_KEYS = ("model", "optimizer", "step", "rng", "config")


# ----------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------


def write(path, model, optimizer, step: int, total_steps: int, fitted: bool, rng: list, elapsed_s: float,
          interval: list, config: dict) -> None:
    """Write a checkpoint atomically (a cut write leaves the previous one).

    Parameters
    ----------
    path : path
        The file (``OUT/checkpoint.pt``).
    model, optimizer : the plain model (not a DDP or compiled wrapper) and its optimizer
    step, total_steps : int
        Steps done, and the schedule's length.
    fitted : bool
        Whether a time budget (``--minutes-policy fit``) set ``total_steps``.
    rng : list of tensors
        One random-generator state per process, in rank order.
    elapsed_s : float
        Training seconds so far, over all invocations.
    interval : [tensor, int]
        Loss sum and count of the logging interval under way.
    config : dict
        The run's settings (checked on ``--resume``, read by :func:`load_model`).
    """
    _checks.atomic_torch_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "total_steps": total_steps,
            "fitted": fitted,
            "rng": rng,
            "elapsed_s": elapsed_s,
            "interval": interval,
            "config": config,
            "torch": str(torch.__version__),
        },
        path,
    )


def write_snapshot(run_dir, model, step: int, elapsed_s: float) -> Path:
    """Keep the weights alone, named by step, with the training time so far: ``RUN/snapshots/step-NNNNNNN.pt``."""
    snap_dir = Path(run_dir) / "snapshots"
    snap_dir.mkdir(exist_ok=True)
    path = snap_dir / f"step-{step:07d}.pt"
    _checks.atomic_torch_save({"model": model.state_dict(), "step": step, "elapsed_s": elapsed_s}, path)
    return path


# ----------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------


def read(path, keys=("model", "config")) -> dict:
    """Load a checkpoint of :mod:`nnimaging.train` (weights only) or raise :class:`UsageError` naming the file.

    An empty, truncated or foreign file, or one without ``keys``, gives one clear message instead of
    the unpickler's ``EOFError``, ``IndexError`` or ``KeyError``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint {path}")
    size = path.stat().st_size
    hint = "delete it (or restore a copy) and start over with --overwrite"
    if size == 0:
        raise UsageError(f"checkpoint {path} is empty (0 bytes): the run that wrote it was cut off; {hint}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - the unpickler fails in many ways on a damaged file
        raise UsageError(f"checkpoint {path} ({size} bytes) is truncated or not a PyTorch checkpoint "
                         f"({type(err).__name__}); {hint}") from None
    missing = [k for k in keys if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise UsageError(f"{path} is not a checkpoint of nnimaging.train: it lacks {missing}; {hint}")
    return ckpt


def changed_settings(saved: dict, cfg: dict) -> list[str]:
    """``"--flag SAVED (this command: NEW)"`` for each training setting that differs from the checkpoint's."""

    def same_path(a, b):
        return a == b or (a is not None and b is not None and Path(a).resolve() == Path(b).resolve())

    changed = []
    for key in RESUME_SETTINGS:
        if key not in saved:  # a checkpoint of an older version: nothing to compare
            continue
        old, new = saved[key], cfg[key]
        if key in ("data_dir", "val_dir") and same_path(old, new):
            continue
        if old != new:
            flag = "model settings" if key == "model_kwargs" else "--" + key.replace("_", "-")
            changed.append(f"{flag} {old!r} (this command: {new!r})")
    return changed


def read_for_resume(run_dir, cfg: dict) -> dict | None:
    """The checkpoint a run continues from (``cfg["resume"]``), or None for a fresh start.

    Checked before any work: ``--resume`` with ``--overwrite``, an existing checkpoint without
    either, a damaged checkpoint, one trained with other settings, and a log without a checkpoint
    all fail here, naming what to do.
    """
    run_dir = Path(run_dir)
    path, log_path = run_dir / FILE, run_dir / "log.jsonl"
    if cfg["resume"] and cfg["overwrite"]:
        raise UsageError("--resume and --overwrite contradict each other: pass one")
    if path.exists() and not cfg["resume"] and not cfg["overwrite"]:
        raise FileExistsError(f"{path} exists: pass --resume to continue that run or --overwrite to start over")
    if not cfg["resume"]:
        return None
    if path.exists():
        ckpt = read(path, _RESUME_KEYS)
        changed = changed_settings(ckpt["config"], cfg)
        if changed:
            raise UsageError(f"{path} was trained with other settings: {'; '.join(changed)}. Resume with the "
                             "same settings, or start over with --overwrite")
        return ckpt
    if log_path.is_file() and log_path.stat().st_size:
        raise UsageError(f"--resume: {run_dir} has a training log but no checkpoint.pt to continue from; "
                         "start over with --overwrite")
    return None


def restore(ckpt: dict, model, optimizer, path) -> None:
    """Load a checkpoint's weights and optimizer state, or raise a ``UsageError`` if they do not fit."""
    try:
        check_state_dict(model, ckpt["model"], str(path))
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, KeyError, RuntimeError) as err:
        raise UsageError(f"checkpoint {path} does not fit this model and optimizer: {err}") from None


def load_model(path):
    """The model of a checkpoint file, in eval mode on the CPU, with ``checkpoint_step`` set.

    Rebuilt from the checkpoint's ``config`` (architecture and model settings) and checked against
    its weights before loading them.
    """
    ckpt = read(path, ("model", "config", "step"))
    config = ckpt["config"]
    model = models.build_model(config["architecture"], **config["model_kwargs"])
    check_state_dict(model, ckpt["model"], str(path))
    model.load_state_dict(ckpt["model"])
    model.checkpoint_step = int(ckpt["step"])
    return model.eval()
