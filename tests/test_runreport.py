"""nnimaging.runreport: a training run's log summarised, and its weight snapshots evaluated."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from nnimaging import data, models, results, runreport, train
from nnimaging.evaluate import evaluate_denoiser

needs_data = pytest.mark.skipif(not os.environ.get("NNIMAGING_DATA"), reason="NNIMAGING_DATA is not set (real images)")


def test_time_to_target_reads_the_first_validation_above_the_target(tmp_path):
    log = [
        {"step": 100, "loss": 0.01, "patches_per_s": 1000.0, "elapsed_s": 10.0},
        {"step": 100, "val_psnr": 28.9},
        {"step": 200, "loss": 0.005, "patches_per_s": 3000.0, "elapsed_s": 20.0},
        {"step": 200, "val_psnr": 29.21},
        {"step": 300, "loss": 0.004, "patches_per_s": 2000.0, "elapsed_s": 30.0},
        {"step": 300, "val_psnr": 29.3},
    ]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    hit = runreport.time_to_target(tmp_path, 29.20)
    assert hit == {"step": 200, "elapsed_s": 20.0, "val_psnr": 29.21, "patches_per_s": 2000.0}
    assert runreport.time_to_target(tmp_path, 30.0) is None


def test_run_summary_reports_steps_throughput_and_validation(tmp_path):
    log = [{"step": 100, "loss": 0.01, "patches_per_s": 1000.0, "elapsed_s": 10.0},
           {"step": 100, "val_psnr": 28.9},
           {"step": 200, "loss": 0.005, "patches_per_s": 3000.0, "elapsed_s": 20.0},
           {"step": 200, "val_psnr": 28.7}]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in log) + "\n")
    assert runreport.run_summary(tmp_path) == {"steps": 200, "elapsed_s": 20.0, "patches_per_s": 2000.0,
                                                  "best_val_psnr": 28.9, "last_val_psnr": 28.7}
    (tmp_path / "log.jsonl").write_text(json.dumps(log[0]) + "\n")
    assert runreport.run_summary(tmp_path)["best_val_psnr"] is None


@needs_data
def test_training_curve_evaluates_every_snapshot_on_the_test_set(tmp_path):
    run = tmp_path / "run"
    train.train({"model_kwargs": {"depth": 3, "width": 4}, "patch_size": 16, "batch_size": 4, "max_steps": 6,
                 "log_every": 3, "val": "none", "snapshot_minutes": 1e-9, "out": str(run), "progress": False,
                 "warmup_steps": 0}, images=[np.full((24, 24), 0.5)] * 2)
    record = runreport.training_curve(run, "set12", sigmas=(25,), limit=2, progress=False, results_dir=tmp_path / "r")
    assert [r["step"] for r in record["rows"]] == [3, 6]
    assert record["rows"][0]["minutes"] < record["rows"][1]["minutes"]
    final = models.DnCNN(3, 4)
    final.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=True)["model"])
    images, names = (x[:2] for x in data.load_images("set12", return_names=True))
    expected = evaluate_denoiser(final.eval(), images, 25, 0, names)["mean_psnr"]
    assert record["rows"][-1]["psnr"]["25"] == pytest.approx(expected)
    assert results.load("training_curve", tmp_path / "r")["runs"][0]["model_kwargs"] == {"depth": 3, "width": 4}
    with pytest.raises(ValueError, match="--snapshot-minutes"):
        runreport.training_curve(tmp_path, "set12", progress=False, results_dir=tmp_path / "r")
    # a second stage, continued from the first run's weights: its steps and minutes count on from the first's end
    more = tmp_path / "more"
    train.train({"model_kwargs": {"depth": 3, "width": 4}, "patch_size": 16, "batch_size": 4, "max_steps": 3,
                 "log_every": 3, "val": "none", "snapshot_minutes": 1e-9, "out": str(more), "progress": False,
                 "warmup_steps": 0, "seed": 1, "init": str(run / "run.pt")}, images=[np.full((24, 24), 0.5)] * 2)
    both = runreport.training_curve([run, more], "set12", sigmas=(25,), limit=2, progress=False,
                                      results_dir=tmp_path / "r")
    assert [(r["run"], r["step"], r["total_step"]) for r in both["rows"]] == [(0, 3, 3), (0, 6, 6), (1, 3, 9)]
    assert both["rows"][:2] == record["rows"], "the first run's snapshots are reused as they were"
    assert both["rows"][2]["minutes"] > both["rows"][1]["minutes"]
    assert both["runs"][1]["init"] == str(run / "run.pt")


def test_the_experiments_command_line_runs_the_training_curve_from_here(tmp_path, monkeypatch):
    from nnimaging import experiments

    seen = {}
    monkeypatch.setattr(runreport, "training_curve", lambda run_dirs, dataset, sigmas, **kw: seen.update(
        run_dirs=run_dirs, dataset=dataset, sigmas=sigmas, **kw) or {})
    experiments.main(["training-curve", "runs/a", "runs/b", "--sigmas", "25", "--results-dir", str(tmp_path),
                      "--no-progress"])
    assert seen["run_dirs"] == ["runs/a", "runs/b"] and seen["sigmas"] == [25.0] and seen["dataset"] == "bsd68"
    assert seen["command"].startswith("python -m nnimaging.experiments training-curve runs/a")
