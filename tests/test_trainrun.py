"""The run machinery around the training loop: processes, device, log, time budget, export record."""

import json

import pytest
import torch

from nnimaging import models, trainconfig, trainrun
from nnimaging._checks import UsageError


def test_one_process_without_torchrun(monkeypatch):
    for key in ("WORLD_SIZE", "RANK"):
        monkeypatch.delenv(key, raising=False)
    procs = trainrun.Processes.start("cpu")
    assert (procs.world, procs.rank, procs.distributed, procs.is_main) == (1, 0, False, True)
    model = torch.nn.Linear(2, 2)
    assert procs.wrap(model, torch.device("cpu"), compile=False) is model


def test_each_process_gets_an_equal_share_of_the_batch():
    assert trainrun.Processes(world=4, rank=1).local_batch(128) == 32
    assert not trainrun.Processes(world=4, rank=1).is_main
    with pytest.raises(UsageError, match="batch_size 10 must be divisible by the number of processes 4"):
        trainrun.Processes(world=4).local_batch(10)


def test_device_setting():
    assert trainrun.choose_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert trainrun.choose_device("auto").type == expected
    with pytest.raises(ValueError, match="amp must be"):
        trainrun.use_bf16("fp16", "cpu")
    assert trainrun.use_bf16("bf16", "cpu") and not trainrun.use_bf16("none", "cuda")


def test_read_log_records_from_a_folder_or_file(tmp_path):
    (tmp_path / "log.jsonl").write_text('{"step": 1, "loss": 0.5}\n\n{"step": 2, "loss": 0.25}\n')
    assert trainrun.read_log_records(tmp_path) == trainrun.read_log_records(tmp_path / "log.jsonl")
    assert [r["step"] for r in trainrun.read_log_records(tmp_path)] == [1, 2]
    with pytest.raises(FileNotFoundError, match="expected a run directory"):
        trainrun.read_log_records(tmp_path / "nothing")


def test_a_resumed_log_drops_redone_records_and_a_cut_last_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 2}\n{"step": 4}\n{"note": "no step"}\n{"step": 6}\n{"step": 8, "lo')
    assert trainrun._read_log_for_resume(path, 4) == [{"step": 2}, {"step": 4}, {"note": "no step"}]
    path.write_text('{"step": 2}\nnot json\n{"step": 4}\n')
    with pytest.raises(UsageError, match="line 2, is not JSON"):
        trainrun._read_log_for_resume(path, 4)


def test_the_training_record_says_how_the_weights_were_made(tmp_path):
    cfg = trainconfig.settings({"out": str(tmp_path / "run"), "sigma_range": (0, 55), "command": "python -m x"})
    record = trainrun.training_record(cfg, 10, 20, 1, torch.device("cpu"), 27.123, 61.26)
    assert record["noise"] == {"sigma_range": [0.0, 55.0]} and record["val"]["sigma"] == 25.0
    assert (record["steps"], record["total_steps"], record["completed"], record["elapsed_s"]) == (10, 20, False, 61.3)
    assert record["command"] == "python -m x" and record["optimizer"] == "Adam"
    json.dumps(record)  # it goes into a JSON manifest


def test_a_run_with_a_time_budget_of_nothing_stops_at_its_first_logging_step(tmp_path):
    cfg = trainconfig.settings({"out": str(tmp_path / "run"), "minutes": 1e-9, "minutes_policy": "stop",
                                "log_every": 2, "max_steps": 10, "val": "none", "progress": False})
    model = models.DnCNN(depth=3, width=4)
    optimizer = torch.optim.Adam(model.parameters())
    run = trainrun.Run(cfg, trainrun.Processes(), torch.device("cpu"), model, optimizer, torch.Generator(),
                       validate=lambda: None)
    run.resume(None)
    with run:
        while run.continues():
            if run.after_step(torch.tensor(1.0), 1e-3):
                break
    summary = run.finish()
    assert summary["stopped_by_time"] and summary["step"] == 2 and not summary["completed"]
    assert [r["step"] for r in trainrun.read_log_records(tmp_path / "run")] == [2, 2]
    assert (tmp_path / "run" / "checkpoint.pt").is_file() and (tmp_path / "run" / "manifest_entry.json").is_file()
