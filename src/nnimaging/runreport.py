"""What a training run did and what its training time bought: its log and its weight snapshots.

* :func:`run_summary` and :func:`time_to_target` read a run's ``log.jsonl`` (written by
  :mod:`nnimaging.trainrun`): the steps, the clock, the throughput, the validation PSNRs, and when
  the run first validated at a target PSNR (what a GPU report needs, ``benchmarks/gpu_training.sh``);
* :func:`training_curve` evaluates every weight snapshot of one or more runs on a test set with the
  book's protocol and writes ``training_curve.json`` (the experiment ``python -m
  nnimaging.experiments training-curve RUN_DIR ...``, the curve of chapter 5).

These look at runs after the fact; :mod:`nnimaging.experiments` is the command line that runs
``training_curve`` with the others.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import _checks, checkpoint, data, models, results
from .evaluate import evaluate_denoiser
from .trainrun import read_log_records

__all__ = ["run_summary", "time_to_target", "training_curve"]


def time_to_target(run_dir, target_psnr: float) -> dict | None:
    """When a training run first validated at ``target_psnr`` dB or better, from its ``log.jsonl``.

    Returns ``{"step", "elapsed_s", "val_psnr", "patches_per_s"}`` (the throughput is the mean of
    the logged intervals up to that step), or None if the run never got there. Training time is
    the run's own clock: data loading and validation included, compilation too.
    """
    log = read_log_records(run_dir)
    rates = []
    elapsed = 0.0
    for record in log:
        if "patches_per_s" in record:
            rates.append(record["patches_per_s"])
            elapsed = record["elapsed_s"]
        if record.get("val_psnr") is not None and record["val_psnr"] >= target_psnr:
            return {"step": record["step"], "elapsed_s": elapsed, "val_psnr": record["val_psnr"],
                    "patches_per_s": float(np.mean(rates)) if rates else None}
    return None


def run_summary(run_dir) -> dict:
    """What a training run did, from its ``log.jsonl``: the numbers a GPU report needs.

    Returns ``{"steps", "elapsed_s", "patches_per_s", "best_val_psnr", "last_val_psnr"}``: the
    last logged step and the run's clock there, the mean of the logged throughputs, and the best
    and the last validation PSNR (None when the run never validated).
    """
    log = read_log_records(run_dir)
    train = [r for r in log if "patches_per_s" in r]
    vals = [r["val_psnr"] for r in log if r.get("val_psnr") is not None]
    return {"steps": max((r["step"] for r in log), default=0),
            "elapsed_s": train[-1]["elapsed_s"] if train else None,
            "patches_per_s": float(np.mean([r["patches_per_s"] for r in train])) if train else None,
            "best_val_psnr": max(vals) if vals else None,
            "last_val_psnr": vals[-1] if vals else None}


def training_curve(
    run_dirs,
    dataset: str = "bsd68",
    sigmas=(15.0, 25.0, 50.0),
    seed: int = 0,
    device: str = "cpu",
    limit: int | None = None,
    progress: bool = True,
    results_dir=None,
    update_shipped: bool = False,
    command: str | None = None,
) -> dict:
    """Test-set PSNR against wall-clock training time: every weight snapshot of one or more training runs.

    ``python -m nnimaging.train ... --snapshot-minutes M`` keeps the weights every ``M`` minutes
    in ``RUN_DIR/snapshots/step-*.pt`` with the step and the training time so far. Each is
    evaluated here with the standard protocol (:func:`nnimaging.evaluate.evaluate_denoiser`), on a
    test set the runs never saw (they validated on held-out training images), so the curve shows
    what each minute of training bought. Several run folders are one training in stages (a run
    continued from the last one's weights with ``--init``): their steps and minutes are counted on
    from the end of the previous run. Written as ``training_curve.json``: one row per snapshot
    (``run`` index, ``step``, ``minutes``, ``psnr`` by sigma) and each run's settings. Snapshots
    already in the target file (same run command and step) are not evaluated again.
    """
    run_dirs = [Path(d) for d in ([run_dirs] if isinstance(run_dirs, (str, Path)) else run_dirs)]
    sigmas = [_checks.non_negative_number("sigma", s) for s in sigmas]
    runs, snaps = [], []
    for run_dir in run_dirs:
        found = sorted((run_dir / "snapshots").glob("step-*.pt"))
        if not found:
            raise _checks.UsageError(f"no weight snapshots in {run_dir / 'snapshots'}: train with --snapshot-minutes")
        config = checkpoint.read(run_dir / "checkpoint.pt")["config"]
        runs.append({k: config.get(k) for k in ("architecture", "model_kwargs", "patch_size", "batch_size", "sigma",
                                                "sigma_range", "lr", "lr_final", "schedule", "amp", "init", "command")})
        snaps.append(found)
    if len({json.dumps([r["architecture"], r["model_kwargs"]], sort_keys=True) for r in runs}) > 1:
        raise _checks.UsageError("the runs of one training curve must train the same network")
    images, names = data.load_images(dataset, return_names=True)
    if limit is not None:
        images, names = images[:limit], names[:limit]
    name = "training_curve"
    done = {}
    target = results.folder(results_dir, update_shipped) / f"{name}.json"
    if target.is_file():
        old = results.load(name, target.parent)
        if (old.get("dataset"), old.get("images"), old.get("seed"), old.get("sigmas")) == (dataset, len(images), seed, sigmas):
            done = {(r.get("command"), r["step"]): r["psnr"] for r in old.get("rows", [])}
    model = models.build_model(runs[0]["architecture"], **runs[0]["model_kwargs"]).to(device)
    rows, step0, minutes0 = [], 0, 0.0
    for index, (run, found) in enumerate(zip(runs, snaps)):
        last = None
        for path in tqdm(found, desc=f"snapshots of run {index + 1}") if progress else found:
            snap = checkpoint.read(path, keys=("model", "step", "elapsed_s"))
            key = (run["command"], int(snap["step"]))
            if key in done:
                psnrs = done[key]
            else:
                model.load_state_dict(snap["model"])
                model.eval()
                psnrs = {f"{s:g}": evaluate_denoiser(model, images, s, seed, names)["mean_psnr"] for s in sigmas}
            last = snap
            rows.append({"run": index, "command": run["command"], "step": int(snap["step"]),
                         "total_step": step0 + int(snap["step"]),
                         "minutes": minutes0 + float(snap["elapsed_s"]) / 60, "psnr": psnrs})
        step0, minutes0 = step0 + int(last["step"]), minutes0 + float(last["elapsed_s"]) / 60
    record = results.record(command, device, dataset=dataset, images=len(images), seed=seed, sigmas=sigmas,
                            runs=runs, rows=rows)
    results.write(name, record, results_dir, update_shipped)
    return record
