"""Facts about the experiment scripts behind chapters 5 and 6, on tiny models and few images."""

import os

import numpy as np
import pytest
import torch

from nnimaging import experiments, models, results, weightstore
from nnimaging.degrade import Degradation
from nnimaging.evaluate import GaussianFilterDenoiser, NoisyBaseline, denoise, evaluate_denoiser, psnr_8bit

needs_data = pytest.mark.skipif(not os.environ.get("NNIMAGING_DATA"), reason="NNIMAGING_DATA is not set (real images)")

DEBLUR = {"task": "deblur", "blur": "motion:5:0", "boundary": "circular"}


@pytest.fixture()
def weights(tmp_path):
    torch.manual_seed(0)
    wdir = tmp_path / "weights"
    for name, model, training in [
        ("dncnn-s25", models.DnCNN(3, 4), {"noise": {"sigma": 25.0}}),
        ("dncnn-b", models.DnCNN(3, 4), {"noise": {"sigma_range": [0.0, 55.0]}}),
        ("unet-deblur", models.UNet(1, 4), {"noise": {"sigma_range": [1, 6]}, "degradation": {**DEBLUR, "wiener_nsr": None}}),
        ("unet-wiener", models.UNet(1, 4), {"noise": {"sigma_range": [1, 6]}, "degradation": {**DEBLUR, "wiener_nsr": 0.01}}),
    ]:
        weightstore.save_pretrained(model, name, training, weights_dir=wdir)
    return wdir


@needs_data
def test_best_gaussian_width_is_the_argmax_over_the_grid():
    from nnimaging import data

    images = data.load_images("train400")[:2]
    width, score = experiments.best_gaussian_width(25, images, widths=[0.5, 1.0, 2.0])
    scores = {}
    for w in (0.5, 1.0, 2.0):
        noisy = [experiments.add_gaussian_noise(im, 25, i) for i, im in enumerate(images)]
        scores[w] = np.mean([psnr_8bit(denoise(GaussianFilterDenoiser(w), y), x) for y, x in zip(noisy, images)])
    assert width == max(scores, key=scores.get) and score == pytest.approx(scores[width])
    # without noise, the least smoothing wins
    assert experiments.best_gaussian_width(0, images, widths=[0.3, 1.0, 2.0])[0] == 0.3


@needs_data
def test_denoise_table_rows_and_resume(weights, tmp_path):
    rdir = tmp_path / "results"
    table = experiments.measure_denoisers(("dncnn-s25", "dncnn-b"), ("set12",), (25, 50), limit=2,
                                      results_dir=rdir, weights_dir=weights, progress=False, command="python -m nnimaging.x")
    rows = {(r["method"], r["sigma"]): r for r in table["rows"]}
    # the model trained at sigma 25 only where it was trained; blind models and baselines everywhere
    assert set(rows) == {(m, s) for m in ("noisy", "gaussian", "dncnn-b") for s in (25.0, 50.0)} | {("dncnn-s25", 25.0)}
    from nnimaging import data

    images = data.load_images("set12")[:2]
    direct = evaluate_denoiser(NoisyBaseline(), images, 50.0, 0)["mean_psnr"]
    assert rows[("noisy", 50.0)]["mean_psnr"] == pytest.approx(direct)
    assert rows[("gaussian", 25.0)]["mean_psnr"] > rows[("noisy", 25.0)]["mean_psnr"] + 3
    assert results.load("denoising", rdir)["rows"] == table["rows"]
    # a second run keeps finished rows; new weights (another sha256) are evaluated again
    again = experiments.measure_denoisers(("dncnn-s25", "dncnn-b"), ("set12",), (25, 50), limit=2,
                                      results_dir=rdir, weights_dir=weights, progress=False)
    assert again["rows"] == table["rows"]
    weightstore.save_pretrained(models.DnCNN(3, 4), "dncnn-b", {"noise": {"sigma_range": [0.0, 55.0]}}, weights_dir=weights)
    third = experiments.measure_denoisers(("dncnn-b",), ("set12",), (25,), limit=2,
                                      results_dir=rdir, weights_dir=weights, progress=False)
    new = [r for r in third["rows"] if r["method"] == "dncnn-b" and r["sigma"] == 25.0]
    assert len(new) == 1 and new[0]["sha256"] == {e["name"]: e["sha256"] for e in weightstore.available(weights)}["dncnn-b"]
    # rows made on other images (another limit) are evaluated again, not mixed in
    fourth = experiments.measure_denoisers(("dncnn-b",), ("set12",), (25,), limit=1,
                                       results_dir=rdir, weights_dir=weights, progress=False)
    assert {(r["method"], r["sigma"]): r["images"] for r in fourth["rows"]}[("noisy", 25.0)] == 1


@needs_data
def test_sigma_sweep_noisy_curve_follows_the_noise_level(weights, tmp_path):
    sweep = experiments.sigma_sweep(("dncnn-b",), limit=1, sigmas=(10, 20, 40), results_dir=tmp_path,
                                    weights_dir=weights, progress=False)
    noisy = sweep["noisy_psnr"]
    assert noisy[0] > noisy[1] > noisy[2]
    assert noisy[0] == pytest.approx(20 * np.log10(255 / 10), abs=0.3)  # 8-bit rounding and clipping aside
    assert len(sweep["models"]["dncnn-b"]["psnr"]) == 3


@needs_data
def test_deblur_table_wiener_row_is_the_wiener_filter_alone(weights, tmp_path):
    table = experiments.measure_deblurring(limit=1, noise_levels=(0.01,), results_dir=tmp_path, weights_dir=weights,
                                     progress=False)
    rows = {r["method"]: r for r in table["rows"]}
    assert set(rows) == {"wiener", "network", "wiener+network"}
    from nnimaging import data

    clean = data.load_images("set12")[0]
    expected = psnr_8bit(Degradation("motion:5:0", 0.01).image(clean, 2.55, 0), clean)
    assert rows["wiener"]["mean_psnr"] == pytest.approx(expected)
    assert (table["blur"], table["wiener_nsr"]) == ("motion:5:0", 0.01)
    weightstore.save_pretrained(models.UNet(1, 4), "unet-deblur",
                           {"degradation": {**DEBLUR, "blur": "gaussian:1", "wiener_nsr": None}}, weights_dir=weights)
    with pytest.raises(ValueError, match="different blurs"):
        experiments.measure_deblurring(limit=1, results_dir=tmp_path, weights_dir=weights, progress=False)


@needs_data
def test_cpu_benchmark_times_each_denoiser(weights, tmp_path):
    record = experiments.cpu_benchmark(("dncnn-s25",), image="set12/01", repeats=1, bm3d=False,
                                       results_dir=tmp_path, weights_dir=weights)
    rows = {r["method"]: r for r in record["rows"]}
    assert record["shape"] == [256, 256] and rows["dncnn-s25"]["seconds"] > 0
    assert rows["noisy"]["psnr"] == pytest.approx(20 * np.log10(255 / 25), abs=0.6)  # clipping helps a little
    with pytest.raises(ValueError, match="no image 'nope'"):
        experiments.cpu_benchmark(("dncnn-s25",), image="set12/nope", results_dir=tmp_path, weights_dir=weights)


def test_command_line_parses_each_experiment():
    parser = experiments._parser()
    a = parser.parse_args(["denoise-table", "--datasets", "set12", "--sigmas", "25", "--device", "cuda"])
    assert a.datasets == ["set12"] and a.sigmas == [25.0] and a.device == "cuda"
    assert parser.parse_args(["ablations", "--studies", "bias", "--steps", "2"]).steps == 2
    with pytest.raises(SystemExit):
        parser.parse_args(["nonsense"])


@needs_data
def test_deep_image_prior_curve_is_stored_every_few_iterations(tmp_path):
    record = experiments.deep_image_prior_curve(size=16, steps=6, depth=1, width=4, every=3, results_dir=tmp_path,
                                                progress=False)
    assert record["iterations"] == [0, 3, 6] and len(record["psnr"]) == len(record["loss"]) == 3
    assert record["best_psnr"] >= max(record["psnr"]) - 1e-9
    assert results.load("deep_image_prior", tmp_path)["final_psnr"] == record["psnr"][-1]
