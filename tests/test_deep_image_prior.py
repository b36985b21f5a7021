"""Facts about the deep image prior (chapter 7)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from nnimaging import deep_image_prior as dip
from nnimaging.metrics import psnr
from imaging_samples import needs_set12, scene


def test_deep_image_prior_returns_curves_of_the_right_length_and_snapshots():
    clean = scene(32)
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    run = dip.deep_image_prior(noisy, clean, steps=30, depth=2, width=4, snapshot_every=8)
    assert run["loss"].shape == run["psnr"].shape == (31,)
    assert sorted(run["snapshots"]) == [0, 8, 16, 24, 30]
    for t, snap in run["snapshots"].items():
        assert snap.shape == (32, 32) and snap.dtype == np.float32
        assert snap.min() >= 0 and snap.max() <= 1
        assert psnr(snap, clean) == pytest.approx(run["psnr"][t], abs=1e-3)
    assert run["best_iteration"] == int(np.argmax(run["psnr"]))
    assert run["best_psnr"] == run["psnr"][run["best_iteration"]]
    # the fit lowers the loss: the last fifth of the curve lies well below the first value
    assert run["loss"][-6:].max() < 0.5 * run["loss"][0]
    assert run["settings"]["steps"] == 30 and run["settings"]["device"] == "cpu"


def test_deep_image_prior_is_deterministic_and_needs_no_clean_image():
    noisy = np.random.default_rng(1).random((16, 16))
    a = dip.deep_image_prior(noisy, steps=5, depth=1, width=4, snapshot_every=5, seed=2)
    b = dip.deep_image_prior(noisy, steps=5, depth=1, width=4, snapshot_every=5, seed=2)
    np.testing.assert_array_equal(a["loss"], b["loss"])
    np.testing.assert_array_equal(a["snapshots"][5], b["snapshots"][5])
    assert a["psnr"] is None and a["best_iteration"] is None
    # a perturbed input changes the outputs, reproducibly; the first loss is then different too
    c = dip.deep_image_prior(noisy, steps=5, depth=1, width=4, input_noise=1 / 30, seed=2)
    d = dip.deep_image_prior(noisy, steps=5, depth=1, width=4, input_noise=1 / 30, seed=2)
    np.testing.assert_array_equal(c["loss"], d["loss"])
    assert c["loss"][0] != a["loss"][0] and c["settings"]["input_noise"] == pytest.approx(1 / 30)
    with pytest.raises(ValueError, match="input_noise"):
        dip.deep_image_prior(noisy, steps=1, input_noise=-1)
    with pytest.raises(ValueError, match="shape of noisy"):
        dip.deep_image_prior(noisy, np.zeros((8, 8)), steps=1)


def test_deep_image_prior_peaks_early_and_ends_up_reproducing_the_noise():
    clean = scene(16)
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    run = dip.deep_image_prior(noisy, clean, steps=300, depth=2, width=8, snapshot_every=300)
    assert run["loss"][-1] < 0.05 * 0.1**2                      # far below the noise variance
    assert abs(run["psnr"][-1] - psnr(noisy, clean)) < 0.5      # the output is the noisy image
    assert 0 < run["best_iteration"] < 300
    assert run["best_psnr"] > run["psnr"][-1] + 2               # its best was much cleaner


@needs_set12
def test_deep_image_prior_demo_steps_through_the_snapshots_of_one_run():
    demo = dip.deep_image_prior_demo(size=32, steps=20, snapshot_every=5, depth=2, width=4)
    run = dip.deep_image_prior_example("set12/02", 64, 96, 32, 25.0, 0, 20, 5, 2, 4, 0.01, 0)["run"]
    assert [c.positions for c in demo.controls] == [[0, 5, 10, 15, 20]]
    frame = demo(iteration=10)
    np.testing.assert_array_equal(frame["output"], run["snapshots"][10])
    assert frame["db"] == pytest.approx(run["psnr"][10], abs=1e-3)
    assert frame["t"].tolist() == [0, 5, 10, 15, 20]
    with pytest.raises(ValueError, match="multiple of snapshot_every"):
        dip.deep_image_prior_demo(size=32, steps=21, snapshot_every=5)
