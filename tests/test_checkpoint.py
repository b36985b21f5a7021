"""The checkpoint's one format: what train writes, --resume and evaluate read back."""

import pytest
import torch

from nnimaging import checkpoint, models, trainconfig
from nnimaging._checks import UsageError


def _write(path, model, optimizer, step=5, config=None):
    config = config or {"architecture": "dncnn", "model_kwargs": {"depth": 3, "width": 4}}
    state = torch.Generator().manual_seed(3).get_state()
    checkpoint.write(path, model, optimizer, step, 10, False, [state], 12.5, [torch.tensor(0.25), 2], config)


def test_a_written_checkpoint_reads_back_with_every_field(tmp_path):
    torch.manual_seed(0)
    model = models.DnCNN(depth=3, width=4)
    optimizer = torch.optim.Adam(model.parameters())
    path = tmp_path / checkpoint.FILE
    _write(path, model, optimizer)
    ckpt = checkpoint.read(path, ("model", "optimizer", "step", "rng", "config"))
    assert {"model", "optimizer", "step", "total_steps", "fitted", "rng", "elapsed_s", "interval", "config",
            "torch"} == set(ckpt)
    assert (ckpt["step"], ckpt["total_steps"], ckpt["elapsed_s"], ckpt["interval"][1]) == (5, 10, 12.5, 2)
    fresh = models.DnCNN(depth=3, width=4)
    checkpoint.restore(ckpt, fresh, torch.optim.Adam(fresh.parameters()), path)
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())


def test_load_model_rebuilds_the_architecture_from_the_checkpoint(tmp_path):
    torch.manual_seed(1)
    model = models.DnCNN(depth=3, width=4)
    path = tmp_path / checkpoint.FILE
    _write(path, model, torch.optim.Adam(model.parameters()), step=7)
    loaded = checkpoint.load_model(path)
    assert isinstance(loaded, models.DnCNN) and loaded.checkpoint_step == 7 and not loaded.training
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_weights_of_another_model_are_refused_naming_the_file(tmp_path):
    model = models.DnCNN(depth=3, width=4)
    path = tmp_path / checkpoint.FILE
    _write(path, model, torch.optim.Adam(model.parameters()))
    other = models.DnCNN(depth=4, width=4)
    with pytest.raises(UsageError, match=f"checkpoint {path} does not fit"):
        checkpoint.restore(checkpoint.read(path), other, torch.optim.Adam(other.parameters()), path)


def test_snapshots_hold_the_weights_step_and_time(tmp_path):
    model = models.DnCNN(depth=3, width=4)
    path = checkpoint.write_snapshot(tmp_path, model, 42, 3.5)
    assert path == tmp_path / "snapshots" / "step-0000042.pt"
    snap = checkpoint.read(path, ("model", "step", "elapsed_s"))
    assert (snap["step"], snap["elapsed_s"]) == (42, 3.5)


def test_resume_checks_name_what_to_do(tmp_path):
    cfg = trainconfig.settings({"out": str(tmp_path / "run"), "model_kwargs": {"depth": 3, "width": 4}})
    assert checkpoint.read_for_resume(tmp_path / "run", cfg) is None  # a fresh start
    with pytest.raises(UsageError, match="contradict"):
        checkpoint.read_for_resume(tmp_path / "run", {**cfg, "resume": True, "overwrite": True})
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(UsageError, match="no checkpoint.pt to continue from"):
        checkpoint.read_for_resume(run, {**cfg, "resume": True})
    model = models.DnCNN(depth=3, width=4)
    _write(run / checkpoint.FILE, model, torch.optim.Adam(model.parameters()), config=cfg)
    with pytest.raises(FileExistsError, match="--resume"):
        checkpoint.read_for_resume(run, cfg)
    assert checkpoint.read_for_resume(run, {**cfg, "resume": True})["step"] == 5
    with pytest.raises(UsageError, match=r"--lr 0\.001 \(this command: 0\.01\)"):
        checkpoint.read_for_resume(run, {**cfg, "resume": True, "lr": 0.01})


def test_changed_settings_ignore_equal_paths_and_older_checkpoints(tmp_path):
    cfg = {key: None for key in checkpoint.RESUME_SETTINGS}
    assert checkpoint.changed_settings({}, {**cfg, "lr": 1.0}) == []  # nothing saved to compare
    same_dir = {**cfg, "data_dir": str(tmp_path)}
    assert checkpoint.changed_settings(same_dir, {**cfg, "data_dir": str(tmp_path / ".")}) == []
    assert checkpoint.changed_settings({**cfg, "model_kwargs": {"depth": 3}}, {**cfg, "model_kwargs": {}}) == [
        "model settings {'depth': 3} (this command: {})"]
