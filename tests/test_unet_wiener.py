"""Facts about the chapter-7 helpers: U-Net receptive fields and Wiener deconvolution."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from nnimaging import conv, restoration
from nnimaging.data import crop
from nnimaging.degrade import blur, kernel_from_spec, wiener_deconvolve
from nnimaging.demo import MAX_FRAMES
from nnimaging.metrics import psnr
from nnimaging.models import UNet
from imaging_samples import needs_set12, scene


def test_unet_receptive_field_closed_form_and_plain_stack():
    for depth in range(7):
        assert restoration.unet_receptive_field(depth) == 13 * 2**depth - 8
    # depth 0 is one block of two 3x3 convolutions
    assert restoration.unet_receptive_field(0) == conv.receptive_field([(3, 1), (3, 1)]) == 5
    with pytest.raises(ValueError, match="upsample"):
        restoration.unet_receptive_field(2, upsample="pixelshuffle")


def test_receptive_field_widths_of_a_plain_stack_are_all_the_rule():
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 2, 5))
    widths = restoration.receptive_field_widths(stack, size=48, count=4)
    assert widths.tolist() == [conv.receptive_field(stack)] * 4


@pytest.mark.parametrize("depth, upsample", [(1, "transpose"), (2, "transpose"),
                                             (3, "transpose"), (1, "nearest"), (2, "nearest"),
                                             (1, "bilinear"), (2, "bilinear")])
def test_unet_receptive_field_is_the_average_of_the_measured_fields(depth, upsample):
    torch.manual_seed(0)
    model = UNet(depth=depth, width=4, upsample=upsample, residual=False)
    rule = restoration.unet_receptive_field(depth, upsample)
    size = 2**depth * math.ceil((rule + 40) / 2**depth)
    widths = restoration.receptive_field_widths(model, size=size, count=2**depth)
    assert widths.mean() == rule
    (h, w), _ = conv.empirical_receptive_field(model, size=size, trials=8)
    assert w == widths[0]                         # the same centre pixel as conv's measurement
    if depth == 3:                                # upsampling makes fields position-dependent
        assert sorted(set(widths.tolist())) == [92, 100]


def test_plot_unet_labels_every_level_with_the_models_widths():
    import matplotlib.pyplot as plt

    model = UNet(depth=3, width=8)
    fig = restoration.plot_unet(model, size=64)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "bottleneck\n64 ch, 8²" in texts
    assert sum(t.startswith("encoder") for t in texts) == 3
    assert sum(t.startswith("decoder") for t in texts) == 3
    assert "decoder\n16 ch, 32²" in texts and "encoder\n8 ch, 64²" in texts
    plt.close(fig)
    with pytest.raises(TypeError, match="UNet"):
        restoration.plot_unet(nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="multiple of"):
        restoration.plot_unet(model, size=60)


# ------------------------------------------------------------------ Wiener
def test_wiener_sweep_without_noise_inverts_the_blur_as_nsr_goes_to_zero():
    clean, kernel = scene(), kernel_from_spec("motion:9:30")
    sweep = restoration.wiener_sweep(clean, kernel, 0.0, [-12, -8, -4, -2])
    np.testing.assert_allclose(sweep["blurred"], blur(clean, kernel))
    assert sweep["psnr"][0] > 80                      # exact up to rounding
    assert np.all(np.diff(sweep["psnr"]) < 0)         # without noise, less damping is better
    np.testing.assert_allclose(sweep["restored"][2], wiener_deconvolve(sweep["blurred"], kernel,
                                                                       1e-4))


def test_wiener_sweep_with_noise_has_its_best_psnr_at_an_intermediate_nsr():
    clean, kernel = scene(), kernel_from_spec("motion:9:30")
    sweep = restoration.wiener_sweep(clean, kernel, 0.01, np.arange(-6, 0.5, 0.5), seed=1)
    best = int(np.argmax(sweep["psnr"]))
    assert 0 < best < len(sweep["psnr"]) - 1
    assert sweep["psnr"][0] < sweep["psnr_blurred"]   # the near-inverse filter amplifies noise
    noise = sweep["blurred"] - blur(clean, kernel)
    assert noise.std() == pytest.approx(0.01, rel=0.05)


@needs_set12
def test_wiener_demo_frames_at_tiny_nsr_without_noise_are_nearly_exact():
    demo = restoration.wiener_demo(size=64, noise_std=0.0, log_nsr_min=-12.0, log_nsr_max=-2.0,
                              log_nsr_step=0.5)
    assert demo.n_combinations == 21 <= MAX_FRAMES
    first, last = demo(log_nsr=-12.0), demo(log_nsr=-2.0)
    assert first["db"] > 60 and first["db"] > last["db"]
    np.testing.assert_array_equal(first["y"], last["y"])  # one curve, a moving marker
    assert first["here_x"].tolist() == [-12.0]
    clean = crop("set12/01", 40, 80, 64).astype(np.float64)
    assert first["db"] == pytest.approx(psnr(first["restored"], clean), abs=1e-3)
