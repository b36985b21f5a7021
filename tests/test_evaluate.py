"""Facts about the evaluation protocol (nnimaging.evaluate); the degradations are tested in test_degrade.py."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from nnimaging import evaluate, models, weightstore
from nnimaging.data import load_image_dir
from nnimaging.evaluate import GaussianFilterDenoiser, NoisyBaseline, evaluate_denoiser, psnr_8bit, to_8bit


def _synthetic(h=40, w=52, seed=0):
    """An 8-bit image scaled to [0, 1], like the test sets."""
    return (np.random.default_rng(seed).integers(0, 256, (h, w)) / 255).astype(np.float32)


# ------------------------------------------------------------------------------ the protocol


def test_to_8bit_clips_and_rounds():
    values = np.array([-0.2, 0.0, 0.5 / 255, 1.49 / 255, 1.51 / 255, 0.5, 1.0, 1.3])
    assert to_8bit(values).tolist() == [0, 0, 0, 1, 2, 128, 255, 255]
    assert to_8bit(values).dtype == np.uint8


def test_identity_model_scores_the_psnr_of_the_rounded_noisy_input():
    image = _synthetic()
    result = evaluate_denoiser(NoisyBaseline(), [image], sigma=25, seed=3)
    noisy = image.astype(np.float64) + 25 / 255 * np.random.default_rng(3).standard_normal(image.shape)
    noisy = noisy.astype(np.float32).astype(np.float64)  # what the model sees
    noisy8 = np.round(np.clip(noisy, 0, 1) * 255)
    mse = np.mean((noisy8 - np.round(image.astype(np.float64) * 255)) ** 2)
    assert result["images"][0]["psnr"] == pytest.approx(10 * np.log10(255**2 / mse), abs=1e-9)
    assert result["mean_psnr"] == result["images"][0]["psnr"] == result["mean_noisy_psnr"]


def test_noisy_psnr_on_mid_gray_matches_theory():
    # no clipping at mid-gray: MSE = sigma^2 + 1/12 (the rounding error of a uniform quantiser)
    result = evaluate_denoiser(NoisyBaseline(), [np.full((400, 400), 128 / 255, np.float32)], sigma=25)
    assert result["mean_psnr"] == pytest.approx(10 * np.log10(255**2 / (625 + 1 / 12)), abs=0.03)


def test_noise_is_reseeded_per_image_and_psnrs_are_averaged_per_image():
    a, b = _synthetic(seed=1), _synthetic(30, 20, seed=2)
    both = evaluate_denoiser(NoisyBaseline(), [a, b], sigma=15, seed=5, names=["a", "b"])
    alone = evaluate_denoiser(NoisyBaseline(), [b], sigma=15, seed=5)
    assert both["images"][1]["psnr"] == alone["images"][0]["psnr"]  # b's noise does not depend on a
    assert both["mean_psnr"] == pytest.approx(np.mean([r["psnr"] for r in both["images"]]))
    assert [r["name"] for r in both["images"]] == ["a", "b"]


def test_gaussian_baseline_smooths_noise_on_a_smooth_image():
    rows, cols = np.mgrid[0:64, 0:64]
    smooth = (np.round(255 * (0.5 + 0.3 * np.sin(cols / 9) * np.cos(rows / 11))) / 255).astype(np.float32)
    noisy = evaluate_denoiser(NoisyBaseline(), [smooth], sigma=25)["mean_psnr"]
    blurred = evaluate_denoiser(GaussianFilterDenoiser(1.5), [smooth], sigma=25)["mean_psnr"]
    assert blurred > noisy + 5
    width0 = evaluate_denoiser(GaussianFilterDenoiser(0.0), [smooth], sigma=25)["mean_psnr"]
    assert width0 == noisy


def test_psnr_8bit_of_a_perfect_estimate_is_infinite():
    image = _synthetic()
    assert psnr_8bit(image + 0.4 / 255, image) == float("inf")  # rounds back to the same 8-bit values


# ------------------------------------------------------------------------------ models and CLI


def test_load_model_resolves_baselines_checkpoints_and_names(tmp_path):
    assert isinstance(evaluate.load_model("noisy"), NoisyBaseline)
    assert evaluate.load_model("gaussian", gaussian_width=2.0).width == 2.0
    torch.manual_seed(0)
    model = models.DnCNN(depth=3, width=4)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(
        {"model": model.state_dict(), "config": {"architecture": "dncnn", "model_kwargs": {"depth": 3, "width": 4}},
         "step": 7},
        run / "checkpoint.pt",
    )  # fmt: skip
    loaded = evaluate.load_model(str(run))
    assert loaded.checkpoint_step == 7 and not loaded.training
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
    weightstore.save_pretrained(model, "tiny", weights_dir=tmp_path / "w")
    assert isinstance(evaluate.load_model("tiny", weights_dir=tmp_path / "w"), models.DnCNN)
    with pytest.raises(weightstore.WeightsNotFoundError):
        evaluate.load_model("nothing", weights_dir=tmp_path / "w")


def test_cli_writes_a_results_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(3):
        Image.fromarray(np.round(_synthetic(20 + i, 24, seed=i) * 255).astype(np.uint8), mode="L").save(data / f"{i:02d}.png")
    out = tmp_path / "results.json"
    argv = ["gaussian", "--gaussian-width", "0.8", "--data-dir", str(data), "--sigma", "15", "--out", str(out), "--no-progress"]
    returned = evaluate.main(argv)
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(returned))
    assert saved["model"]["architecture"] == "gaussian" and saved["model"]["kwargs"] == {"width": 0.8}
    assert saved["sigma"] == 15 and saved["seed"] == 0 and [r["name"] for r in saved["images"]] == ["00", "01", "02"]
    assert saved["mean_psnr"] == pytest.approx(np.mean([r["psnr"] for r in saved["images"]]))
    assert saved["command"] == "python -m nnimaging.evaluate " + " ".join(argv)
    assert saved["torch"] == torch.__version__ and saved["device"].startswith("cpu")
    # the same numbers as the Python API on the same images
    images = load_image_dir(data)
    api = evaluate_denoiser(GaussianFilterDenoiser(0.8), images, sigma=15)
    assert [r["psnr"] for r in saved["images"]] == [r["psnr"] for r in api["images"]]
