"""Facts about the training code: patch sampling, augmentation, schedule, CLI, checkpoints, resume."""

import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from nnimaging import data, models, train, trainconfig, trainrun, weightstore
from nnimaging.degrade import Degradation
from nnimaging.evaluate import psnr_8bit
from nnimaging.train import PatchSampler, dihedral, dihedral_offsets, lr_at

SIGMA25_VARIANCE = (25 / 255) ** 2


# ------------------------------------------------------------------------------ augmentation


def test_dihedral_gives_the_8_symmetries_of_the_square():
    patch = torch.arange(16.0).view(4, 4)
    outputs = [dihedral(patch, k) for k in range(8)]
    assert len({tuple(o.flatten().tolist()) for o in outputs}) == 8
    for o in outputs:  # each one only moves pixels
        assert sorted(o.flatten().tolist()) == list(range(16))
    keys = {tuple(o.flatten().tolist()) for o in outputs}
    for expected in (patch.flip(-1), patch.flip(-2), patch.T, patch.flip(-1).flip(-2), torch.rot90(patch)):
        assert tuple(expected.flatten().tolist()) in keys
    torch.testing.assert_close(dihedral(patch, 1), torch.rot90(patch, 1))
    torch.testing.assert_close(dihedral(patch, 4), patch.T)


def test_dihedral_offsets_turn_each_symmetry_into_one_gather():
    patch = torch.rand(5, 5)
    table = dihedral_offsets(5)
    assert table.shape == (8, 2, 5, 5)
    for k in range(8):
        torch.testing.assert_close(patch[table[k, 0], table[k, 1]], dihedral(patch, k), rtol=0, atol=0)


def _coded_images(shapes):
    """Images whose every pixel value encodes (image, row, column) uniquely."""
    images = []
    for i, (h, w) in enumerate(shapes):
        rows, cols = np.mgrid[0:h, 0:w]
        images.append(((i * 4096 + rows * 64 + cols) / 16384).astype(np.float32))
    return images


def _decode(value):
    code = int(round(float(value) * 16384))
    return code // 4096, (code % 4096) // 64, code % 64


def test_patches_are_in_bounds_crops_of_images_of_different_sizes():
    shapes = [(20, 24), (17, 30), (16, 16)]
    images = _coded_images(shapes)
    sampler = PatchSampler(images, 16, augment=False)
    gen = torch.Generator().manual_seed(0)
    batch = sampler.sample(300, gen)
    assert batch.shape == (300, 1, 16, 16) and batch.dtype == torch.float32
    seen = {i: set() for i in range(3)}
    for patch in batch[:, 0]:
        i, y, x = _decode(patch[0, 0])
        h, w = shapes[i]
        assert 0 <= y <= h - 16 and 0 <= x <= w - 16
        assert np.array_equal(patch.numpy(), images[i][y : y + 16, x : x + 16])
        seen[i].add((y, x))
    assert seen[2] == {(0, 0)}  # a 16x16 image has one 16x16 crop
    assert (0, 0) in seen[0] and max(y for y, _ in seen[1]) == 1  # both ends of the range are drawn
    assert max(x for _, x in seen[1]) == 14


def test_augmented_patches_are_symmetries_of_crops_and_all_8_occur():
    images = _coded_images([(20, 24), (18, 19)])
    sampler = PatchSampler(images, 8, augment=True)
    batch = sampler.sample(400, torch.Generator().manual_seed(1))
    used = set()
    for patch in batch[:, 0]:
        i, y, x = _decode(patch.min())  # values grow along rows and columns: the minimum is the crop's corner
        crop = torch.from_numpy(images[i][y : y + 8, x : x + 8])
        matches = [k for k in range(8) if torch.equal(dihedral(crop, k), patch)]
        assert len(matches) == 1
        used.add(matches[0])
    assert used == set(range(8))


def test_sampler_rejects_bad_images():
    with pytest.raises(ValueError, match="smaller than the patch size 40"):
        PatchSampler([np.zeros((30, 50), np.float32)], 40)
    with pytest.raises(ValueError, match=r"values must be in \[0, 1\]"):
        PatchSampler([np.full((50, 50), 255.0, np.float32)], 40)
    with pytest.raises(ValueError, match=r"\(H, W\) float array"):
        PatchSampler([np.zeros((50, 50), np.uint8)], 40)


# ------------------------------------------------------------------------------ schedule


def test_learning_rate_schedules():
    lr, final, total = 1e-3, 1e-5, 1000
    assert lr_at(0, total, lr, final, "cosine") == pytest.approx(lr)
    assert lr_at(total, total, lr, final, "cosine") == pytest.approx(final)
    assert lr_at(total // 2, total, lr, final, "cosine") == pytest.approx((lr + final) / 2)
    assert lr_at(total // 2, total, lr, final, "exp") == pytest.approx(np.sqrt(lr * final))
    assert [lr_at(s, total, lr, final, "step") for s in (0, 499, 500, 749, 750)] == pytest.approx(
        [lr, lr, lr / 10, lr / 10, lr / 100]
    )
    assert lr_at(700, total, lr, final, "constant") == lr
    # linear warm-up: step s of w uses (s + 1) / w of the rate
    assert lr_at(9, total, lr, final, "constant", warmup_steps=40) == pytest.approx(lr * 10 / 40)
    with pytest.raises(ValueError, match="schedule must be one of"):
        lr_at(0, 10, lr, final, "linear")


# ------------------------------------------------------------------------------ one step


def _step_setup(seed=0):
    rng = np.random.default_rng(seed)
    sampler = PatchSampler([rng.random((30, 34)), rng.random((24, 40))], 16)
    torch.manual_seed(seed)
    net = models.DnCNN(depth=3, width=4)
    return sampler, net, torch.optim.Adam(net.parameters(), lr=1e-2)


def test_training_step_is_the_step_of_chapter_5_written_once():
    sampler, net, optimizer = _step_setup()
    _, twin, twin_optimizer = _step_setup()
    loss = train.training_step(net, optimizer, sampler, Degradation(), 8, 25.0, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)  # by hand: patches, noise, MSE, Adam
    clean = sampler.sample(8, generator)
    expected = torch.nn.functional.mse_loss(twin(Degradation().batch(clean, 25.0, generator)), clean)
    twin_optimizer.zero_grad()
    expected.backward()
    twin_optimizer.step()
    assert not loss.requires_grad and torch.equal(loss, expected.detach())
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), twin.state_dict().values()))


def test_training_step_draws_a_noise_level_per_patch_from_a_range():
    sampler, net, optimizer = _step_setup()
    at_25 = train.training_step(net, optimizer, sampler, Degradation(), 8, 25.0, torch.Generator().manual_seed(1))
    sampler, net, optimizer = _step_setup()
    blind = train.training_step(net, optimizer, sampler, Degradation(), 8, (0.0, 55.0), torch.Generator().manual_seed(1))
    sampler, net, optimizer = _step_setup()
    same = train.training_step(net, optimizer, sampler, Degradation(), 8, [0.0, 55.0], torch.Generator().manual_seed(1))
    assert torch.equal(blind, same) and not torch.equal(blind, at_25)


def test_validation_psnr_scores_in_eval_mode_and_returns_to_training():
    net = models.DnCNN(depth=3, width=4).train()  # untrained: returns its input
    clean = [np.full((20, 20), 0.5)]
    noisy = [clean[0] + 0.02]
    assert train.validation_psnr(net, noisy, clean) == pytest.approx(psnr_8bit(noisy[0], clean[0]))
    assert net.training
    assert train.validation_psnr(net, [], []) is None


def test_train_offers_the_recipe_not_the_run_machinery():
    # callers import the run machinery and the settings from their own modules
    for name in ("TrainingInterrupted", "read_log_records", "cpu_has_native_bf16", "config_from_args", "DEFAULTS"):
        assert name not in train.__all__
    assert not hasattr(train, "TrainingInterrupted") and not hasattr(train, "read_log_records")
    assert {"PatchSampler", "training_step", "lr_at", "train", "main"} <= set(train.__all__)


# ------------------------------------------------------------------------------ the CLI


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Six small 8-bit PNG images: smooth gradients and stripes."""
    root = tmp_path_factory.mktemp("tiny_data")
    rows, cols = np.mgrid[0:24, 0:28]
    for i in range(6):
        image = 128 + 100 * np.sin(0.3 * cols + i) * np.cos(0.2 * rows * (1 + i % 3))
        Image.fromarray(np.round(image).astype(np.uint8), mode="L").save(root / f"img{i}.png")
    return root


def _argv(data_dir, out, *extra):
    return [
        "dncnn", "--depth", "3", "--width", "8", "--data-dir", str(data_dir), "--patch-size", "16",
        "--batch-size", "8", "--lr", "1e-2", "--warmup-steps", "0", "--val", "heldout", "--val-count", "1",
        "--log-every", "3", "--val-every", "6", "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def _log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_cli_trains_and_writes_checkpoint_log_weights_and_export(data_dir, tmp_path):
    out, wdir = tmp_path / "run", tmp_path / "weights"
    summary = train.main(_argv(data_dir, out, "--max-steps", "12", "--export", "tiny", "--weights-dir", str(wdir)))
    assert summary["step"] == 12 and summary["completed"]
    ckpt = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert ckpt["step"] == 12 and set(ckpt) >= {"model", "optimizer", "rng", "config"}
    assert ckpt["config"]["model_kwargs"] == {"depth": 3, "width": 8}
    log = _log(out)
    losses = [r for r in log if "loss" in r]
    assert [r["step"] for r in losses] == [3, 6, 9, 12]
    assert all(r["patches_per_s"] > 0 and np.isfinite(r["loss"]) for r in losses)
    assert [r["step"] for r in log if "val_psnr" in r] == [6, 12] and log[-1]["final"]
    # the run's own weights file and manifest snippet
    entry = json.loads((out / "manifest_entry.json").read_text())
    assert entry["sha256"] == weightstore.sha256_file(out / entry["file"])
    assert entry["training"]["noise"] == {"sigma": 25.0} and entry["training"]["steps"] == 12
    assert entry["training"]["command"].startswith("python -m nnimaging.train dncnn --depth 3")
    # --export: a package-style manifest that load_pretrained reads
    loaded = weightstore.load_pretrained("tiny", weights_dir=wdir)
    assert isinstance(loaded, models.DnCNN) and not loaded.training
    for key, value in ckpt["model"].items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_resume_continues_exactly_like_an_uninterrupted_run(data_dir, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train.main(_argv(data_dir, whole, "--max-steps", "12"))
    first = train.main(_argv(data_dir, parts, "--max-steps", "12", "--stop-at-step", "5"))
    assert first["step"] == 5 and not first["completed"]
    assert torch.load(parts / "checkpoint.pt", weights_only=True)["step"] == 5
    second = train.main(_argv(data_dir, parts, "--max-steps", "12", "--resume"))
    assert second["step"] == 12 and second["completed"]
    a = torch.load(whole / "checkpoint.pt", weights_only=True)
    b = torch.load(parts / "checkpoint.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert torch.equal(a["rng"][0], b["rng"][0])
    # the logging intervals that are the same in both runs report the same losses
    loss_a = {r["step"]: r["loss"] for r in _log(whole) if "loss" in r}
    loss_b = {r["step"]: r["loss"] for r in _log(parts) if "loss" in r}
    assert loss_a[9] == loss_b[9] and loss_a[12] == loss_b[12]
    assert sorted(loss_b) == [3, 5, 6, 9, 12]  # the log is appended to, not restarted


def test_existing_run_is_not_overwritten_and_model_must_match_to_resume(data_dir, tmp_path):
    out = tmp_path / "run"
    train.main(_argv(data_dir, out, "--max-steps", "2"))
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        train.main(_argv(data_dir, out, "--max-steps", "2"))
    with pytest.raises(ValueError, match=r"other settings: model settings \{'depth': 3, 'width': 8\} \(this command: \{'depth': 3, 'width': 4\}\)"):
        train.main(_argv(data_dir, out, "--max-steps", "4", "--resume", "--width", "4"))
    assert train.main(_argv(data_dir, out, "--max-steps", "2", "--overwrite"))["step"] == 2


def test_init_starts_from_given_weights_with_a_fresh_optimizer_and_records_them(data_dir, tmp_path):
    first = tmp_path / "first"
    train.main(_argv(data_dir, first, "--max-steps", "6"))
    weights = first / "first.pt"
    second = tmp_path / "second"
    summary = train.main(_argv(data_dir, second, "--max-steps", "1", "--lr", "1e-12", "--init", str(weights)))
    assert summary["completed"]
    ckpt = torch.load(second / "checkpoint.pt", weights_only=True)
    start = torch.load(weights, weights_only=True)
    params = {k for k in start if "running" not in k and "num_batches" not in k}  # BatchNorm statistics move
    for key in params:  # one step at a negligible rate: still the starting weights
        value = start[key]
        assert torch.allclose(ckpt["model"][key].float(), value.float(), atol=1e-6), key
    assert all(s["step"] == 1 for s in ckpt["optimizer"]["state"].values()), "a fresh Adam state"
    init = json.loads((second / "manifest_entry.json").read_text())["training"]["init"]
    assert init["from"] == str(weights) and init["sha256"] == weightstore.sha256_file(weights)
    assert init["training"]["steps"] == 6, "the starting weights' own training is recorded"
    # a file that does not fit the model fails before any work, naming it
    with pytest.raises(ValueError, match=r"init .*first.pt.*shape mismatch"):
        train.main(_argv(data_dir, tmp_path / "third", "--max-steps", "1", "--width", "4", "--init", str(weights)))
    assert not (tmp_path / "third").exists()
    with pytest.raises(ValueError, match="not a weights file nor a name"):
        train.main(_argv(data_dir, tmp_path / "fourth", "--max-steps", "1", "--init", "no-such-model"))


def test_loss_falls_below_the_noise_variance_on_constant_images(tmp_path):
    # the best denoiser of a constant image returns the constant: a tiny DnCNN learns that
    images = [np.full((24, 28), v, np.float32) for v in (0.3, 0.5, 0.7, 0.4)]
    config = dict(model_kwargs={"depth": 3, "width": 8}, patch_size=16, batch_size=16, max_steps=150, lr=1e-2,
                  lr_final=1e-3, warmup_steps=0, log_every=10, val="none", out=str(tmp_path / "run"), progress=False)  # fmt: skip
    summary = train.train(config, images=images)
    losses = [r["loss"] for r in _log(tmp_path / "run") if "loss" in r]
    assert losses[-1] < losses[0] / 5  # it starts as the identity (loss = noise variance) and learns
    # below the MSE of the noisy input itself (sigma 25): the model does remove noise
    assert summary["final_loss"] < 0.7 * SIGMA25_VARIANCE


def test_blind_training_records_the_noise_range(data_dir, tmp_path):
    out = tmp_path / "blind"
    argv = _argv(data_dir, out, "--max-steps", "3", "--sigma-range", "0", "55", "--val-dir", str(data_dir))
    summary = train.main(argv)
    assert summary["entry"]["training"]["noise"] == {"sigma_range": [0.0, 55.0]}
    assert summary["entry"]["training"]["val"] == {"set": str(data_dir), "count": 1, "sigma": 25.0,
                                                   "psnr": summary["val_psnr"]}  # sigma 25 by default


def test_unet_trains_with_the_same_cli(data_dir, tmp_path):
    argv = _argv(data_dir, tmp_path / "unet", "--max-steps", "2")
    argv[argv.index("--depth") + 1] = "2"
    argv[0] = "unet"
    summary = train.main([*argv, "--upsample", "bilinear"])
    assert summary["entry"]["architecture"] == "unet"
    assert summary["entry"]["kwargs"]["upsample"] == "bilinear"


def test_deblurring_networks_train_on_the_recorded_degradation(data_dir, tmp_path):
    out = tmp_path / "deblur"
    argv = _argv(data_dir, out, "--max-steps", "3", "--blur", "gaussian:1", "--wiener-nsr", "0.01",
                 "--sigma-range", "1", "6", "--val-dir", str(data_dir))  # fmt: skip
    summary = train.main(argv)
    training = summary["entry"]["training"]
    assert training["degradation"] == {"task": "deblur", "blur": "gaussian:1", "boundary": "circular", "wiener_nsr": 0.01}
    assert training["val"]["sigma"] == 3.5, "validated in the middle of a noise range that excludes 25"
    assert training["elapsed_s"] >= 0 and training["device"].startswith("cpu")
    # the validation PSNR is measured on the Wiener output of the blurred image, not on noise alone
    from nnimaging.degrade import Degradation
    from nnimaging.evaluate import denoise, psnr_8bit

    clean = data.load_image_dir(data_dir)[0]
    model = weightstore.load_pretrained("deblur", weights_dir=_manifest_dir(out))
    expected = psnr_8bit(denoise(model, Degradation("gaussian:1", 0.01).image(clean, 3.5, 0)), clean)
    assert summary["val_psnr"] == pytest.approx(expected, abs=1e-4)
    with pytest.raises(ValueError, match=r"other settings: --blur 'gaussian:1' \(this command: 'gaussian:2'\)"):
        other = list(argv)
        other[other.index("gaussian:1")] = "gaussian:2"
        train.main([*other, "--resume"])
    with pytest.raises(ValueError, match="blur kernel spec"):
        train.main(_argv(data_dir, tmp_path / "bad", "--blur", "box:3"))
    with pytest.raises(ValueError, match="needs a blur kernel"):
        train.main(_argv(data_dir, tmp_path / "bad", "--wiener-nsr", "0.1"))


def _manifest_dir(out):
    entry = json.loads((out / "manifest_entry.json").read_text())
    (out / "manifest.json").write_text(json.dumps([entry]))
    return out


def test_bf16_autocast_path_keeps_float32_weights(data_dir, tmp_path):
    # the path CUDA runs take by default, exercised here with CPU autocast
    summary = train.main(_argv(data_dir, tmp_path / "bf16", "--max-steps", "3", "--amp", "bf16"))
    assert summary["entry"]["training"]["amp"] == "bf16" and np.isfinite(summary["final_loss"])
    state = torch.load(tmp_path / "bf16" / "bf16.pt", weights_only=True)
    assert all(v.dtype == torch.float32 for k, v in state.items() if not k.endswith("num_batches_tracked"))


def test_minutes_budget_stop_policy_stops_early_and_does_not_export(data_dir, tmp_path):
    out, wdir = tmp_path / "run", tmp_path / "weights"
    argv = _argv(data_dir, out, "--max-steps", "500", "--minutes", "1e-6", "--minutes-policy", "stop")
    summary = train.main([*argv, "--export", "x", "--weights-dir", str(wdir)])
    assert summary["stopped_by_time"] and not summary["completed"]
    assert summary["step"] == 3  # the budget is checked at every logging step
    assert not (wdir / "x.pt").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 3


def test_minutes_budget_fit_policy_shortens_the_schedule(data_dir, tmp_path, monkeypatch):
    clock = iter(np.arange(0, 1e4, 0.5))  # a fake clock: each reading is half a second later
    monkeypatch.setattr(trainrun, "_now", lambda: float(next(clock)))  # the clock of the run machinery
    out = tmp_path / "run"
    argv = _argv(data_dir, out, "--max-steps", "100000", "--minutes", "0.5", "--log-every", "1", "--val", "none")
    summary = train.main(argv)
    assert summary["completed"] and not summary["stopped_by_time"]
    assert 20 <= summary["total_steps"] < 100  # far fewer than 100000 steps fit in half a minute
    last = [r for r in _log(out) if "loss" in r][-1]
    assert last["lr"] == pytest.approx(lr_at(summary["step"] - 1, summary["total_steps"], 1e-2, 1e-5, "cosine"))


def test_command_line_flags_map_to_settings():
    cfg = trainconfig.config_from_args(["dncnn", "--bias", "--depth", "20", "--sigma-range", "0", "55", "--compile"])
    assert cfg["model_kwargs"] == {"depth": 20, "bias": True}
    assert cfg["sigma_range"] == [0.0, 55.0] and cfg["compile"]
    cfg = trainconfig.config_from_args(["unet", "--no-batch-norm", "--no-residual", "--upsample", "nearest"])
    assert cfg["model_kwargs"] == {"batch_norm": False, "residual": False, "upsample": "nearest"}
    cfg = trainconfig.config_from_args(["dncnn", "--no-batch-norm", "--bias", "--blur", "motion:9:30", "--wiener-nsr", "0.01"])
    assert cfg["model_kwargs"] == {"batch_norm": False, "bias": True}
    assert (cfg["blur"], cfg["wiener_nsr"]) == ("motion:9:30", 0.01)
    with pytest.raises(SystemExit):
        trainconfig.config_from_args(["dncnn", "--upsample", "nearest"])
    with pytest.raises(SystemExit):
        trainconfig.config_from_args(["unet", "--bias"])
    with pytest.raises(ValueError, match="unknown training settings"):
        train.train({"learning_rate": 1.0})


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_torchrun_with_two_processes_writes_once_with_one_rng_state_per_rank(data_dir, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "ddp"
    argv = _argv(data_dir, out, "--max-steps", "4")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "nnimaging.train"]
    done = subprocess.run(cmd + argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 4 and len(ckpt["rng"]) == 2
    assert not torch.equal(ckpt["rng"][0], ckpt["rng"][1])  # each process draws its own patches
    steps = [r["step"] for r in _log(out) if "loss" in r]
    assert steps == [3, 4]  # one writer: no duplicated lines
    assert done.stderr.count("step 4/4") == 1


def test_amp_auto_uses_bf16_only_where_the_cpu_computes_it_natively(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not trainrun.use_bf16("auto", "cpu")  # emulated bf16: float32 is faster
    assert trainrun.use_bf16("auto", "cuda") and trainrun.use_bf16("bf16", "cpu") and not trainrun.use_bf16("none", "cuda")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert trainrun.use_bf16("auto", "cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert trainrun.use_bf16("auto", "cpu")
    with pytest.raises(ValueError, match="amp must be"):
        trainrun.use_bf16("fp16", "cpu")


def test_snapshots_keep_the_weights_with_their_training_time(data_dir, tmp_path):
    out = tmp_path / "run"
    train.main(_argv(data_dir, out, "--max-steps", "9", "--snapshot-minutes", "1e-9"))
    snaps = sorted((out / "snapshots").glob("step-*.pt"))
    assert [p.name for p in snaps] == ["step-0000003.pt", "step-0000006.pt", "step-0000009.pt"]
    last = torch.load(snaps[-1], weights_only=True)
    assert last["step"] == 9 and last["elapsed_s"] > 0
    final = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(final[k], v) for k, v in last["model"].items())


# ------------------------------------------------------------------------------ interruptions and resume


def _interrupted_run(data_dir, out, signum, max_steps):
    """Train in a subprocess (each step slowed to 20 ms), send ``signum`` once it has logged, wait for it."""
    import subprocess
    import sys
    import time

    code = (
        "import sys, time\n"
        "import nnimaging.train as t\n"
        "from nnimaging._checks import run_cli\n"
        "sample = t.PatchSampler.sample\n"
        "t.PatchSampler.sample = lambda self, *a, **k: (time.sleep(0.02), sample(self, *a, **k))[1]\n"
        "run_cli(t.main, sys.argv[1:], prog='train')\n"
    )
    argv = _argv(data_dir, out, "--max-steps", str(max_steps))
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not ((out / "log.jsonl").is_file() and "loss" in (out / "log.jsonl").read_text()):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the training run never logged"
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_killed_training_run_resumes_to_the_same_result(data_dir, tmp_path, signame):
    # SIGTERM (a batch scheduler, `timeout`, a closing Binder) lost the whole run: no handler, first
    # checkpoint after 5000 steps, and --resume restarted at step 0, appending to the old log
    import signal as _signal

    whole, parts, total = tmp_path / "whole", tmp_path / "parts", 60
    code, err = _interrupted_run(data_dir, parts, getattr(_signal, signame), total)
    assert code == 128 + getattr(_signal, signame), err
    assert f"{signame}: stopped at step" in err and "Traceback" not in err
    stopped = torch.load(parts / "checkpoint.pt", weights_only=True)["step"]
    assert 3 <= stopped < total, "interrupted after its first log record and before the end"
    assert _log(parts)[-1] == {"step": stopped, "interrupted": signame}
    resumed = train.main(_argv(data_dir, parts, "--max-steps", str(total), "--resume"))
    assert resumed["step"] == total and resumed["completed"]
    reference = train.main(_argv(data_dir, whole, "--max-steps", str(total)))
    a = torch.load(whole / "checkpoint.pt", weights_only=True)
    b = torch.load(parts / "checkpoint.pt", weights_only=True)
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert resumed["final_loss"] == reference["final_loss"]
    # the same log: every record of the uninterrupted run, once, plus the interruption
    log = [r for r in _log(parts) if "interrupted" not in r]
    assert [r["step"] for r in log] == [r["step"] for r in _log(whole)]
    assert [r.get("loss") for r in log] == [r.get("loss") for r in _log(whole)]


def test_resume_refuses_changed_settings_naming_each(data_dir, tmp_path):
    # --resume with another sigma or learning rate was accepted; the manifest then recorded the new values
    out = tmp_path / "run"
    train.main(_argv(data_dir, out, "--max-steps", "6", "--stop-at-step", "3"))
    before = (out / "log.jsonl").read_bytes()
    with pytest.raises(ValueError) as info:
        train.main(_argv(data_dir, out, "--max-steps", "6", "--resume", "--sigma", "15", "--lr", "0.002",
                         "--batch-size", "4", "--patch-size", "12", "--schedule", "step"))
    message = str(info.value)
    for expected in ("--sigma 25.0 (this command: 15.0)", "--lr 0.01 (this command: 0.002)",
                     "--batch-size 8 (this command: 4)", "--patch-size 16 (this command: 12)",
                     "--schedule 'cosine' (this command: 'step')"):
        assert expected in message
    with pytest.raises(ValueError, match=r"--sigma-range None \(this command: \[0.0, 55.0\]\)"):
        train.main(_argv(data_dir, out, "--max-steps", "6", "--resume", "--sigma-range", "0", "55"))
    assert (out / "log.jsonl").read_bytes() == before
    # what may change: the budget, the logging, the device
    assert train.main(_argv(data_dir, out, "--max-steps", "6", "--resume", "--log-every", "2"))["step"] == 6


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "foreign"])
def test_resume_from_a_damaged_checkpoint_names_the_file(data_dir, tmp_path, damage):
    # train --resume crashed with IndexError: pop from empty list, EOFError or KeyError: 'config'
    out = tmp_path / "run"
    train.main(_argv(data_dir, out, "--max-steps", "3"))
    path = out / "checkpoint.pt"
    payload = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": payload[: len(payload) // 3],
                      "random": np.random.default_rng(1).bytes(5000)}.get(damage, b""))
    if damage == "foreign":
        torch.save({"model": {}}, path)
    with pytest.raises(ValueError, match=f"{path}.*(empty|truncated|lacks)"):
        train.main(_argv(data_dir, out, "--max-steps", "3", "--resume"))


def test_resume_without_a_checkpoint_does_not_restart_an_existing_log(data_dir, tmp_path):
    out = tmp_path / "run"
    train.main(_argv(data_dir, out, "--max-steps", "3"))
    (out / "checkpoint.pt").unlink()
    before = (out / "log.jsonl").read_bytes()
    with pytest.raises(ValueError, match="has a training log but no checkpoint.pt"):
        train.main(_argv(data_dir, out, "--max-steps", "3", "--resume"))
    assert (out / "log.jsonl").read_bytes() == before


def test_overwrite_keeps_the_old_run_until_the_new_one_starts(data_dir, tmp_path, monkeypatch):
    # --overwrite deleted the old log before the new run had started
    out = tmp_path / "run"
    train.main(_argv(data_dir, out, "--max-steps", "3"))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError("the data disk went away")

    monkeypatch.setattr(train, "_load_training_images", broken)
    with pytest.raises(OSError, match="went away"):
        train.main(_argv(data_dir, out, "--max-steps", "3", "--overwrite"))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    monkeypatch.undo()
    assert train.main(_argv(data_dir, out, "--max-steps", "2", "--overwrite"))["step"] == 2
    assert [r["step"] for r in _log(out) if "loss" in r] == [2]


def test_a_log_write_cut_by_ulimit_keeps_the_log(data_dir, tmp_path):
    # log.jsonl was appended to in place: a full disk left half a record, and --resume then failed on it
    import subprocess
    import sys

    out = tmp_path / "run"
    train.main(_argv(data_dir, out, "--max-steps", "400", "--stop-at-step", "200", "--log-every", "1", "--val", "none"))
    before = (out / "log.jsonl").read_bytes()
    assert len(before) > (out / "checkpoint.pt").stat().st_size  # the limit below cuts the log, not the checkpoint
    limit = len(before) + 20  # room for less than one more record
    code = (
        "import resource, signal, sys\n"
        "import nnimaging.train as t\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "t.main(sys.argv[1:])\n"
    )
    argv = _argv(data_dir, out, "--max-steps", "400", "--log-every", "1", "--val", "none", "--resume")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "File too large" in done.stderr, done.stderr[-2000:]
    assert (out / "log.jsonl").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------ checked at the door


@pytest.mark.parametrize("flags, expected", [
    (["--val-count", "-2"], "val_count must be an integer >= 1, got -2"),
    (["--minutes", "-1"], "minutes must be a finite number > 0, got -1.0"),
    (["--patch-size", "0"], "patch_size must be an integer >= 1, got 0"),
    (["--batch-size", "-8"], "batch_size must be an integer >= 1, got -8"),
    (["--ckpt-minutes", "-5"], "ckpt_minutes must be a finite number > 0, got -5.0"),
    (["--lr", "0"], "lr must be a finite number > 0, got 0.0"),
    (["--export", "../x"], "export name must use letters, digits"),
    (["--depth", "0"], "model settings {'depth': 0, 'width': 8} for dncnn: depth must be"),
    (["--data-dir", "/nonexistent/images"], "data_dir /nonexistent/images: no such folder"),
])  # fmt: skip
def test_bad_settings_fail_at_the_door_with_one_line_and_no_run_folder(data_dir, tmp_path, capsys, flags, expected):
    # --val-count -2, --limit -1, --minutes -1 were accepted; --export '../x' failed only after training;
    # bad model arguments left an empty run folder; a user error printed a full traceback
    from nnimaging._checks import run_cli

    out = tmp_path / "run"
    argv = _argv(data_dir, out, "--max-steps", "3")
    for flag, value in zip(flags[::2], flags[1::2]):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    with pytest.raises(SystemExit) as info:
        run_cli(train.main, argv, prog="train")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("train: error: ") and expected in err, err
    assert not out.exists()


def test_command_line_user_error_is_one_line_with_status_2(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "nnimaging.train", "dncnn", "--val-count", "-2", "--out",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "python -m nnimaging.train: error: val_count must be an integer >= 1, got -2\n"
    assert not (tmp_path / "run").exists()
