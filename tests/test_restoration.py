"""Facts about the chapter 6 comparison demos and the deblurring table."""

import os

import numpy as np
import pytest
import torch

from nnimaging import models, restoration, weightstore
from nnimaging.degrade import Degradation
from nnimaging.evaluate import denoise, psnr_8bit

needs_data = pytest.mark.skipif(not os.environ.get("NNIMAGING_DATA"), reason="NNIMAGING_DATA is not set (real images)")
DEBLUR = {"task": "deblur", "blur": "motion:5:0", "boundary": "circular"}


@pytest.fixture()
def weights(tmp_path):
    torch.manual_seed(0)
    for name, model, training in [
        ("dncnn-b", models.DnCNN(3, 4), {"noise": {"sigma_range": [0.0, 55.0]}}),
        ("unet-denoise", models.UNet(1, 4), {"noise": {"sigma_range": [0.0, 55.0]}}),
        ("unet-deblur", models.UNet(1, 4), {"degradation": {**DEBLUR, "wiener_nsr": None}}),
        ("unet-wiener", models.UNet(1, 4), {"degradation": {**DEBLUR, "wiener_nsr": 0.01}}),
    ]:
        weightstore.save_pretrained(model, name, training, weights_dir=tmp_path)
    return tmp_path


@needs_data
def test_crop_is_the_named_window_and_checks_bounds():
    from nnimaging import data

    images, names = data.load_images("set12", return_names=True)
    np.testing.assert_array_equal(data.crop("set12/03", 10, 20, 32), images[2][10:42, 20:52])
    assert data.crop("set12/03", 10, 20, 32).dtype == np.float32
    with pytest.raises(ValueError, match="does not fit"):
        data.crop("set12/01", 240, 0, 32)
    with pytest.raises(ValueError, match="no image 'x'"):
        data.crop("set12/x", 0, 0, 8)
    with pytest.raises(ValueError, match="dataset/name"):
        data.crop("01", 0, 0, 8)
    with pytest.raises(ValueError, match="top must be an integer >= 0"):
        data.crop("set12/01", -1, 0, 8)


@needs_data
def test_comparison_frames_hold_each_model_output_and_its_psnr(weights):
    demo = restoration.denoiser_comparison_demo(size=32, sigmas=(15, 50), weights_dir=weights)
    assert demo.n_combinations == 2
    clean = restoration.crop("set12/02", 64, 64, 32)
    frame = demo(sigma=50)
    noisy = Degradation().image(clean, 50, 0)
    assert frame["psnr_noisy"] == pytest.approx(psnr_8bit(noisy, clean))
    net = weightstore.load_pretrained("unet-denoise", weights_dir=weights)
    np.testing.assert_allclose(frame["out1"], np.clip(denoise(net, noisy), 0, 1), atol=1e-6)
    assert frame["psnr1"] == pytest.approx(psnr_8bit(denoise(net, noisy), clean))
    assert frame["psnr_noisy"] < demo(sigma=15)["psnr_noisy"]


@needs_data
def test_deblur_frames_apply_the_networks_recorded_degradation(weights):
    demo = restoration.deblur_demo(size=32, noise_levels=(0.01, 0.02), weights_dir=weights)
    clean = restoration.crop("set12/02", 64, 64, 32)
    frame = demo(noise=0.02)
    wiener = Degradation("motion:5:0", 0.01).image(clean, 5.1, 0)
    assert frame["psnr_wiener"] == pytest.approx(psnr_8bit(wiener, clean))
    wnet = weightstore.load_pretrained("unet-wiener", weights_dir=weights)
    np.testing.assert_allclose(frame["both"], np.clip(denoise(wnet, wiener), 0, 1), atol=1e-6)
    weightstore.save_pretrained(models.UNet(1, 4), "unet-wiener", {"degradation": {**DEBLUR, "wiener_nsr": None}},
                           weights_dir=weights)
    with pytest.raises(ValueError, match="not trained on Wiener output"):
        restoration.deblur_demo(size=32, weights_dir=weights)


def test_deblur_table_puts_each_number_in_its_cell():
    record = {
        "dataset": "set12", "blur": "motion:9:30", "wiener_nsr": 0.01,
        "blurred_noisy_psnr": {"0.01": 20.0, "0.02": 19.5},
        "rows": [
            {"method": "wiener", "noise": 0.01, "mean_psnr": 25.0},
            {"method": "network", "noise": 0.01, "mean_psnr": 26.0},
            {"method": "wiener+network", "noise": 0.01, "mean_psnr": 27.126},
            {"method": "wiener", "noise": 0.02, "mean_psnr": 22.0},
            {"method": "network", "noise": 0.02, "mean_psnr": 24.5},
        ],
    }
    table = restoration.deblur_table(record)
    assert table.columns == ["σ = 0.01", "σ = 0.02"]
    assert table.labels == ["blurred + noisy input", "Wiener only", "network only", "Wiener + network"]
    assert table.cell("Wiener + network", "σ = 0.01") == "27.13"
    assert table.cell("Wiener + network", "σ = 0.02") == "–"
    assert table.cell("blurred + noisy input", "σ = 0.02") == "19.50"
    assert "motion:9:30" in table.caption
    with pytest.raises(ValueError, match="no rows"):
        restoration.deblur_table({"rows": []})
