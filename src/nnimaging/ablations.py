"""Ablations: does each design choice of DnCNN and the U-Net help, at equal training?

Four studies, each a pair (or two pairs) of networks that differ in one choice only and are
trained with the **same number of steps, the same patches and noise (same seed) and the same
schedule** on Train400, then tested on Set12:

============== ==========================================================================
``residual``   predict the noise and subtract it (DnCNN) vs predict the clean image
``batch_norm`` BatchNorm in the middle layers (DnCNN) vs none (the convolutions get biases)
``bias``       with vs without any additive constant (no BatchNorm), trained at one noise
               level and tested below and above it, at two widths (the problem session)
``skips``      a U-Net vs the plain encoder-decoder of the same depth and widths
============== ==========================================================================

Where the two arms of a comparison differ by less than :data:`CLOSE_DB` at a noise level, both
are retrained with :data:`EXTRA_SEEDS` and the table gives the mean and the spread (min to max)
over the seeds, so the reader can see whether the difference is larger than the luck of one
initialisation. Finished runs are reused and interrupted ones resumed (``runs/ablations/``).

``python -m nnimaging.experiments ablations`` runs them and writes ``ablations.json``;
:func:`table` and :func:`differences` read that record for the chapters.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from . import results, weightstore
from .data import load_images
from .evaluate import evaluate_denoiser
from .train import train

__all__ = ["STUDIES", "COMMON", "CLOSE_DB", "EXTRA_SEEDS", "run", "table", "differences"]

COMMON = {
    "patch_size": 40,
    "batch_size": 16,
    "steps": 1000,
    "lr": 1e-3,
    "lr_final": 1e-5,
    "schedule": "cosine",
    "warmup_steps": 100,
    "dataset": "train400",
    "test_set": "set12",
}
"""Training and test settings shared by every arm (noise as a standard deviation, 0..255 scale)."""

_DNCNN = {"architecture": "dncnn", "depth": 10, "width": 32}
_PLAIN = {"architecture": "dncnn", "depth": 6, "batch_norm": False}
_UNET = {"architecture": "unet", "depth": 2, "width": 16}

STUDIES = {
    "residual": {
        "question": "residual learning: predict the noise, or the clean image?",
        "train_sigma": 25.0,
        "test_sigmas": (25.0,),
        "arms": {"residual": dict(_DNCNN), "direct": {**_DNCNN, "residual": False}},
        "pairs": [("residual", "direct")],
    },
    "batch_norm": {
        "question": "batch normalization in the middle layers, or none (biases instead)?",
        "train_sigma": 25.0,
        "test_sigmas": (25.0,),
        "arms": {"batch norm": dict(_DNCNN), "no batch norm": {**_DNCNN, "batch_norm": False, "bias": True}},
        "pairs": [("batch norm", "no batch norm")],
    },
    "bias": {
        "question": "bias-free networks (no additive constant) vs with bias, away from the training noise level",
        "train_sigma": 25.5,
        "test_sigmas": (0.0, 2.55, 25.5, 51.0),
        "arms": {
            "with bias, 32 channels": {**_PLAIN, "width": 32, "bias": True},
            "bias-free, 32 channels": {**_PLAIN, "width": 32, "bias": False},
            "with bias, 64 channels": {**_PLAIN, "width": 64, "bias": True},
            "bias-free, 64 channels": {**_PLAIN, "width": 64, "bias": False},
        },
        "pairs": [("bias-free, 32 channels", "with bias, 32 channels"),
                  ("bias-free, 64 channels", "with bias, 64 channels")],
    },
    "skips": {
        "question": "U-Net skip connections, or the plain encoder-decoder?",
        "train_sigma": 25.0,
        "test_sigmas": (25.0,),
        "arms": {"U-Net (skips)": dict(_UNET), "encoder-decoder (no skips)": {**_UNET, "skips": False}},
        "pairs": [("U-Net (skips)", "encoder-decoder (no skips)")],
    },
}
"""The studies: for each, the arms (architecture and constructor arguments), the training noise
level, the test noise levels (0..255 scale; 0 tests a clean input) and the compared pairs
``(a, b)`` (:func:`differences` reports ``a - b``)."""

CLOSE_DB = 0.3
"""Pairs closer than this (dB, at any test level) are rerun with :data:`EXTRA_SEEDS`."""

EXTRA_SEEDS = (1, 2)
"""The seeds added to seed 0 when a comparison is close."""


def _train_config(study: dict, arm: dict, seed: int, out: Path, device: str, progress: bool, command,
                  common: dict) -> dict:
    kwargs = {k: v for k, v in arm.items() if k != "architecture"}
    return {
        "architecture": arm["architecture"],
        "model_kwargs": kwargs,
        "dataset": common["dataset"],
        "patch_size": common["patch_size"],
        "batch_size": common["batch_size"],
        "lr": common["lr"],
        "lr_final": common["lr_final"],
        "schedule": common["schedule"],
        "warmup_steps": min(common["warmup_steps"], common["steps"] - 1),
        "sigma": study["train_sigma"],
        "max_steps": common["steps"],
        "minutes": None,
        "val": "none",
        "seed": seed,
        "device": device,
        "amp": "none",
        "out": str(out),
        "resume": (out / "checkpoint.pt").is_file(),
        "progress": progress,
        "log_every": 50,
        "ckpt_every": 500,
        "command": command,
    }


def _arm_result(study: dict, arm: dict, seed: int, common: dict, runs_dir, images, names, device, progress,
                command) -> dict:
    """Train one arm with one seed (or reuse its finished run) and test it."""
    out = _run_dir(runs_dir, study, arm, seed, common)
    if not (out / "manifest_entry.json").is_file():
        summary = train(_train_config(study, arm, seed, out, device, progress, command, common))
        if not summary["completed"]:
            raise RuntimeError(f"ablation run {out} stopped early; run the experiment again to resume it")
    model = weightstore.load_run(out).to(device)
    entry = model.pretrained                          # the run's manifest entry, read once by load_run
    psnr, noisy = {}, {}
    for s in study["test_sigmas"]:
        res = evaluate_denoiser(model, images, s, 0, names)
        psnr[f"{s:g}"] = res["mean_psnr"]
        noisy[f"{s:g}"] = res["mean_noisy_psnr"] if s > 0 else None
    return {"seed": seed, "steps": entry["training"]["steps"], "seconds": entry["training"]["elapsed_s"],
            "parameters": entry["parameters"], "psnr": psnr, "noisy_psnr": noisy}


def _run_dir(runs_dir, study: dict, arm: dict, seed: int, common: dict) -> Path:
    """One folder per distinct training (arm, noise level, settings, seed): studies that share an arm share its runs."""
    what = json.dumps({"arm": arm, "sigma": study["train_sigma"], "common": common}, sort_keys=True)
    return Path(runs_dir) / f"{arm['architecture']}-{hashlib.sha256(what.encode()).hexdigest()[:10]}-seed{seed}"


def _close(study: dict, arms: dict) -> bool:
    for a, b in study["pairs"]:
        for level in arms[a][0]["psnr"]:
            if abs(arms[a][0]["psnr"][level] - arms[b][0]["psnr"][level]) < CLOSE_DB:
                return True
    return False


def run(
    studies=None,
    device: str = "cpu",
    runs_dir="runs/ablations",
    steps: int | None = None,
    limit: int | None = None,
    results_dir=None,
    update_shipped: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """Train and test every arm of the named studies (default: all); writes ``ablations.json``.

    Parameters
    ----------
    studies : list of str, optional
        Keys of :data:`STUDIES`.
    runs_dir : path
        Where each arm's training run lives (``ARCH-HASH-seedK``, one per distinct training);
        finished runs are reused, interrupted ones resumed.
    steps : int, optional
        Training steps of every arm (default ``COMMON["steps"]``; fewer: a quick check, not for
        the shipped file).
    limit : int, optional
        Test on the first ``limit`` images only (a quick check; not for the shipped file).

    Returns
    -------
    dict
        The record: ``settings`` (:data:`COMMON`, :data:`CLOSE_DB`), ``studies``: for each name,
        its question, training and test levels, pairs and ``arms``: a list of per-seed results
        (``seed``, ``steps``, ``seconds``, ``parameters``, ``psnr`` and ``noisy_psnr`` by level).
    """
    names_wanted = list(STUDIES) if studies is None else list(studies)
    unknown = [s for s in names_wanted if s not in STUDIES]
    if unknown:
        raise ValueError(f"unknown ablation studies {unknown}; expected some of {list(STUDIES)}")
    common = dict(COMMON) if steps is None else {**COMMON, "steps": int(steps)}
    images, names = load_images(COMMON["test_set"], return_names=True)
    if limit is not None:
        images, names = images[:limit], names[:limit]
    out = {}
    for name in names_wanted:
        study = STUDIES[name]
        args = (common, runs_dir, images, names, device, progress, command)
        arms = {a: [_arm_result(study, arm, 0, *args)] for a, arm in study["arms"].items()}
        if _close(study, arms):
            for a, arm in study["arms"].items():
                arms[a] += [_arm_result(study, arm, seed, *args) for seed in EXTRA_SEEDS]
        out[name] = {
            "question": study["question"],
            "train_sigma": study["train_sigma"],
            "test_sigmas": list(study["test_sigmas"]),
            "pairs": [list(p) for p in study["pairs"]],
            "arms": {a: {"settings": study["arms"][a], "runs": runs} for a, runs in arms.items()},
        }
    record = results.record(command, device, settings={**common, "close_db": CLOSE_DB}, dataset=COMMON["test_set"],
                            images=names, studies=out)
    results.write("ablations", record, results_dir, update_shipped)
    return record


# ----------------------------------------------------------------------------- reading the record
def _study(record: Mapping, name: str) -> Mapping:
    studies = record.get("studies") if isinstance(record, Mapping) else None
    if not isinstance(studies, Mapping) or name not in studies:
        have = sorted(studies) if isinstance(studies, Mapping) else "none"
        raise ValueError(f"the ablations record has no study {name!r} (it has: {have}); expected the output of "
                         "python -m nnimaging.experiments ablations")
    return studies[name]


def _mean_spread(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.max() - values.min())


def differences(record: Mapping, name: str) -> list[dict]:
    """For each compared pair and test level: ``a`` minus ``b`` in dB (mean over the seeds).

    Returns
    -------
    list of dict
        ``{"a", "b", "sigma" (0..255 scale), "trained" (the training level), "difference",
        "seeds", "a_spread", "b_spread"}``; spreads are max minus min over the seeds (0 for one).
    """
    study = _study(record, name)
    out = []
    for a, b in study["pairs"]:
        runs_a, runs_b = study["arms"][a]["runs"], study["arms"][b]["runs"]
        for s in study["test_sigmas"]:
            key = f"{s:g}"
            mean_a, spread_a = _mean_spread([r["psnr"][key] for r in runs_a])
            mean_b, spread_b = _mean_spread([r["psnr"][key] for r in runs_b])
            out.append({"a": a, "b": b, "sigma": float(s), "trained": math.isclose(s, study["train_sigma"]),
                        "difference": mean_a - mean_b, "seeds": min(len(runs_a), len(runs_b)),
                        "a_spread": spread_a, "b_spread": spread_b})
    return out


def table(record: Mapping, name: str):
    """One study as a :class:`nnimaging.denoising.Table`: a row per arm, a column per test level.

    Cells hold the mean PSNR in dB over the seeds, with the spread (max - min) when there are
    several; the first row is the noisy input (``–`` for a clean input, whose PSNR is infinite).
    """
    from .denoising import Table  # denoising imports the chapter helpers; deferred, it is only a container

    study = _study(record, name)
    levels = [f"{s:g}" for s in study["test_sigmas"]]
    columns = ["parameters", "steps", "seeds"] + [f"σ={s}" for s in levels]
    first = next(iter(study["arms"].values()))["runs"][0]["noisy_psnr"]
    rows = [("noisy input", ["–", "–", "–"] + [("–" if first[s] is None else f"{first[s]:.2f}") for s in levels])]
    for arm, data in study["arms"].items():
        runs = data["runs"]
        cells = [f"{runs[0]['parameters']:,}", f"{runs[0]['steps']:,}", str(len(runs))]
        for s in levels:
            mean, spread = _mean_spread([r["psnr"][s] for r in runs])
            cells.append(f"{mean:.2f}" + (f" ± {spread / 2:.2f}" if len(runs) > 1 else ""))
        rows.append((arm, cells))
    steps = record.get("settings", {}).get("steps")
    caption = (f"{study['question'][0].upper()}{study['question'][1:]} Mean PSNR in dB on "
               f"{record.get('dataset', 'the test set')} (± half the range over the seeds); trained at "
               f"σ={study['train_sigma']:g} for {steps:,} steps each (results/ablations.json).")
    return Table(columns, rows, caption, row_header="network")
