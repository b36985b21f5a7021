"""Facts about the chapter-6 helpers: autoencoders, ROC, U-Net fields, Wiener, deep image prior."""

import itertools
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
from torch import nn

from nnimaging import conv, encdec
from nnimaging.degrade import blur, kernel_from_spec, wiener_deconvolve
from nnimaging.demo import MAX_FRAMES
from nnimaging.metrics import psnr
from nnimaging.models import ConvAutoencoder, UNet


def _have(loader):
    try:
        loader()
    except Exception:  # noqa: BLE001 - any reason the data cannot be read means: skip
        return False
    return True


def _set12():
    from nnimaging.data import load_images

    load_images("set12")


def _mnist():
    from nnimaging.data import load_mnist

    load_mnist("heldout")


needs_set12 = pytest.mark.skipif(not _have(_set12), reason="Set12 is not available")
needs_mnist = pytest.mark.skipif(not _have(_mnist), reason="MNIST is not available")


def _blobs(n=96, seed=0):
    """Digit-like images: one or two Gaussian blobs on a black 28x28 background, in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28))
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            r, c = rng.uniform(8, 20, size=2)
            out[i] += np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * rng.uniform(2, 4) ** 2))
    return np.clip(out, 0, 1).astype(np.float32)


# ------------------------------------------------------------------ autoencoders
def test_train_autoencoder_is_deterministic_and_leaves_the_global_random_state_alone():
    images = _blobs(64)
    state = torch.random.get_rng_state()
    a_model, a_losses = encdec.train_autoencoder(images, latent=4, epochs=2, batch_size=16,
                                                 seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b_model, b_losses = encdec.train_autoencoder(images, latent=4, epochs=2, batch_size=16,
                                                 seed=3)
    np.testing.assert_array_equal(a_losses, b_losses)
    for p, q in zip(a_model.parameters(), b_model.parameters()):
        assert torch.equal(p, q)
    assert isinstance(a_model, ConvAutoencoder) and a_model.latent == 4 and not a_model.training
    _, c_losses = encdec.train_autoencoder(images, latent=4, epochs=2, batch_size=16, seed=4)
    assert not np.array_equal(a_losses, c_losses)


def test_train_autoencoder_records_one_loss_per_step_and_lowers_it():
    images = _blobs(100)
    model, losses = encdec.train_autoencoder(images, latent=8, epochs=6, batch_size=32, seed=0)
    assert losses.shape == (6 * math.ceil(100 / 32),)
    assert losses[-4:].mean() < 0.5 * losses[:4].mean()
    # the last recorded loss is the MSE of the last batch before the last step: the same order
    # of magnitude as the error of the trained model on all images
    errors = encdec.reconstruction_errors(model, images)
    assert errors.mean() < 0.5 * losses[:4].mean()


def test_reconstruction_errors_are_the_per_image_mean_squared_differences():
    images = _blobs(10)
    torch.manual_seed(0)
    model = ConvAutoencoder(latent=3).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(images)[:, None])[:, 0].numpy()
    recon = encdec.reconstruct(model, images, batch_size=3)
    np.testing.assert_allclose(recon, expected, rtol=0, atol=1e-6)
    errors = encdec.reconstruction_errors(model, images)
    manual = ((expected - images.astype(np.float64)) ** 2).mean(axis=(1, 2))
    np.testing.assert_allclose(errors, manual, rtol=1e-5)
    assert errors.shape == (10,)


@pytest.mark.parametrize("images, error, match", [
    (np.zeros((4, 32, 32), np.float32), ValueError, r"shape \(N, 28, 28\)"),
    (np.zeros((4, 28, 28), np.uint8), TypeError, "divide 8-bit images by 255"),
    (np.full((4, 28, 28), 2.0, np.float32), ValueError, r"values in \[0, 1\]"),
])
def test_autoencoder_helpers_reject_images_that_are_not_mnist_digits(images, error, match):
    with pytest.raises(error, match=match):
        encdec.train_autoencoder(images, latent=2)


def test_tile_places_each_image_in_its_cell_with_gaps():
    images = np.arange(6 * 2 * 3, dtype=float).reshape(6, 2, 3)
    out = encdec.tile(images, ncols=4, gap=1, fill=-1)
    assert out.shape == (2 * 2 + 1, 4 * 3 + 3)
    np.testing.assert_array_equal(out[3:5, 4:7], images[5])
    np.testing.assert_array_equal(out[2], -1)
    np.testing.assert_array_equal(out[3:5, 8:], -1)  # two empty cells after the sixth image


@needs_mnist
def test_latent_sweep_scores_each_model_on_the_heldout_digits_and_the_demo_shows_them():
    from nnimaging.data import load_mnist

    sweep = encdec.latent_sweep((2, 6), epochs=1, n_train=300)
    heldout = load_mnist("heldout")[0]
    for k in (2, 6):
        assert sweep[k]["model"].latent == k
        assert sweep[k]["heldout_mse"] == pytest.approx(
            encdec.reconstruction_errors(sweep[k]["model"], heldout).mean())
    assert encdec.latent_sweep([2, 6], 1, 300, 32, 0) is sweep  # remembered, not retrained
    demo = encdec.latent_size_demo(latents=(2, 6), epochs=1, n_train=300, n_show=5)
    frame = demo(latent=6)
    assert frame["picture"].shape == (2 * 28 + 1, 5 * 28 + 4)
    np.testing.assert_array_equal(frame["picture"][:28, :28], heldout[0])
    assert frame["err"] == pytest.approx(sweep[6]["heldout_mse"])
    assert demo.args == {"latents": [2, 6], "epochs": 1, "n_train": 300, "n_show": 5, "seed": 0}


# ------------------------------------------------------------------ ROC analysis
def _auc_by_pairs(normal, anomalous):
    """Count the pairs: an anomaly above a normal example counts 1, a tie 1/2."""
    total = 0.0
    for a, n in itertools.product(anomalous, normal):
        total += 1.0 if a > n else 0.5 if a == n else 0.0
    return total / (len(normal) * len(anomalous))


def test_roc_auc_equals_the_brute_force_pair_count_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        normal = rng.integers(0, 8, size=rng.integers(1, 30)).astype(float)
        anomalous = rng.integers(2, 10, size=rng.integers(1, 30)).astype(float)
        assert encdec.roc_auc(normal, anomalous) == pytest.approx(_auc_by_pairs(normal, anomalous))


def test_roc_auc_is_one_half_for_one_distribution_and_one_for_separable_scores():
    rng = np.random.default_rng(1)
    same = encdec.roc_auc(rng.normal(size=3000), rng.normal(size=3000))
    assert abs(same - 0.5) < 0.02
    assert encdec.roc_auc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.5   # all ties
    assert encdec.roc_auc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0
    assert encdec.roc_auc([0.5, 0.9], [0.1, 0.2, 0.3]) == 0.0


def test_roc_curve_runs_from_nothing_to_everything_and_its_area_is_the_auc():
    rng = np.random.default_rng(2)
    normal = np.round(rng.normal(0, 1, 200), 1)            # rounding makes ties
    anomalous = np.round(rng.normal(1, 1, 150), 1)
    fpr, tpr, thresholds = encdec.roc_curve(normal, anomalous)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds[1:]) < 0)
    for t, f, p in zip(thresholds[1:], fpr[1:], tpr[1:]):
        assert f == np.mean(normal >= t) and p == np.mean(anomalous >= t)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(encdec.roc_auc(normal, anomalous))


def test_roc_helpers_reject_empty_or_non_finite_scores():
    with pytest.raises(ValueError, match="at least one score"):
        encdec.roc_auc([], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        encdec.roc_curve([1.0, np.nan], [1.0])


# ------------------------------------------------------------------ images the model never saw
def test_image_patches_are_block_averages_of_random_crops():
    rng = np.random.default_rng(0)
    sources = [rng.random((40, 50)), rng.random((60, 36))]
    patches = encdec.image_patches(sources, n=5, size=6, zoom=3, seed=7)
    assert patches.shape == (5, 6, 6) and patches.dtype == np.float32
    draw = np.random.default_rng(7)   # the same draws, in the documented order
    for patch in patches:
        im = sources[draw.integers(2)]
        r, c = draw.integers(im.shape[0] - 18 + 1), draw.integers(im.shape[1] - 18 + 1)
        expected = im[r:r + 18, c:c + 18].reshape(6, 3, 6, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(patch, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="smaller than the crop"):
        encdec.image_patches([np.zeros((10, 10))], n=1, size=6, zoom=2)


def test_draw_letters_makes_centred_white_on_black_glyphs_of_the_requested_height():
    letters = encdec.draw_letters("AHX", size=28, height=20)
    assert letters.shape == (3, 28, 28) and letters.dtype == np.float32
    assert letters.min() == 0.0 and letters.max() == 1.0
    for glyph in letters:
        assert glyph[0].max() == 0 and glyph[:, 0].max() == 0   # black border
        rows = np.nonzero(glyph.max(axis=1) > 0)[0]
        cols = np.nonzero(glyph.max(axis=0) > 0)[0]
        assert 19 <= rows.max() - rows.min() + 1 <= 21            # 20 pixels tall
        assert abs((rows.min() + rows.max()) / 2 - 13.5) <= 0.5   # centred
        assert abs((cols.min() + cols.max()) / 2 - 13.5) <= 0.5
    assert np.abs(letters[0] - letters[1]).mean() > 0.05          # different letters differ
    with pytest.raises(ValueError, match="without spaces"):
        encdec.draw_letters("A B")


# ------------------------------------------------------------------ VAE
def test_gaussian_kl_matches_torch_distributions():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    p = torch.distributions.Normal(torch.zeros(5, 3, dtype=torch.float64),
                                   torch.ones(5, 3, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(q, p).sum(-1).numpy()
    np.testing.assert_allclose(encdec.gaussian_kl(mu, logvar), expected, rtol=1e-12)
    assert encdec.gaussian_kl(np.zeros(4), np.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        encdec.gaussian_kl(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------ U-Net
def test_unet_receptive_field_closed_form_and_plain_stack():
    for depth in range(7):
        assert encdec.unet_receptive_field(depth) == 13 * 2**depth - 8
    # depth 0 is one block of two 3x3 convolutions
    assert encdec.unet_receptive_field(0) == conv.receptive_field([(3, 1), (3, 1)]) == 5
    with pytest.raises(ValueError, match="upsample"):
        encdec.unet_receptive_field(2, upsample="pixelshuffle")


def test_receptive_field_widths_of_a_plain_stack_are_all_the_rule():
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 2, 5))
    widths = encdec.receptive_field_widths(stack, size=48, count=4)
    assert widths.tolist() == [conv.receptive_field(stack)] * 4


@pytest.mark.parametrize("depth, upsample", [(1, "transpose"), (2, "transpose"),
                                             (3, "transpose"), (1, "nearest"), (2, "nearest"),
                                             (1, "bilinear"), (2, "bilinear")])
def test_unet_receptive_field_is_the_average_of_the_measured_fields(depth, upsample):
    torch.manual_seed(0)
    model = UNet(depth=depth, width=4, upsample=upsample, residual=False)
    rule = encdec.unet_receptive_field(depth, upsample)
    size = 2**depth * math.ceil((rule + 40) / 2**depth)
    widths = encdec.receptive_field_widths(model, size=size, count=2**depth)
    assert widths.mean() == rule
    (h, w), _ = conv.empirical_receptive_field(model, size=size, trials=8)
    assert w == widths[0]                         # the same centre pixel as conv's measurement
    if depth == 3:                                # upsampling makes fields position-dependent
        assert sorted(set(widths.tolist())) == [92, 100]


def test_plot_unet_labels_every_level_with_the_models_widths():
    import matplotlib.pyplot as plt

    model = UNet(depth=3, width=8)
    fig = encdec.plot_unet(model, size=64)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "bottleneck\n64 ch, 8²" in texts
    assert sum(t.startswith("encoder") for t in texts) == 3
    assert sum(t.startswith("decoder") for t in texts) == 3
    assert "decoder\n16 ch, 32²" in texts and "encoder\n8 ch, 64²" in texts
    plt.close(fig)
    with pytest.raises(TypeError, match="UNet"):
        encdec.plot_unet(nn.Conv2d(1, 1, 3))
    with pytest.raises(ValueError, match="multiple of"):
        encdec.plot_unet(model, size=60)


# ------------------------------------------------------------------ Wiener
def _scene(n=64):
    rows, cols = np.mgrid[0:n, 0:n]
    box = (rows > n // 3) & (rows < 2 * n // 3) & (cols > n // 4) & (cols < 3 * n // 4)
    return 0.4 + 0.3 * np.sin(cols / 5) * np.cos(rows / 7) + 0.2 * box


def test_wiener_sweep_without_noise_inverts_the_blur_as_nsr_goes_to_zero():
    clean, kernel = _scene(), kernel_from_spec("motion:9:30")
    sweep = encdec.wiener_sweep(clean, kernel, 0.0, [-12, -8, -4, -2])
    np.testing.assert_allclose(sweep["blurred"], blur(clean, kernel))
    assert sweep["psnr"][0] > 80                      # exact up to rounding
    assert np.all(np.diff(sweep["psnr"]) < 0)         # without noise, less damping is better
    np.testing.assert_allclose(sweep["restored"][2], wiener_deconvolve(sweep["blurred"], kernel,
                                                                       1e-4))


def test_wiener_sweep_with_noise_has_its_best_psnr_at_an_intermediate_nsr():
    clean, kernel = _scene(), kernel_from_spec("motion:9:30")
    sweep = encdec.wiener_sweep(clean, kernel, 0.01, np.arange(-6, 0.5, 0.5), seed=1)
    best = int(np.argmax(sweep["psnr"]))
    assert 0 < best < len(sweep["psnr"]) - 1
    assert sweep["psnr"][0] < sweep["psnr_blurred"]   # the near-inverse filter amplifies noise
    noise = sweep["blurred"] - blur(clean, kernel)
    assert noise.std() == pytest.approx(0.01, rel=0.05)


@needs_set12
def test_wiener_demo_frames_at_tiny_nsr_without_noise_are_nearly_exact():
    demo = encdec.wiener_demo(size=64, noise_std=0.0, log_nsr_min=-12.0, log_nsr_max=-2.0,
                              log_nsr_step=0.5)
    assert demo.n_combinations == 21 <= MAX_FRAMES
    first, last = demo(log_nsr=-12.0), demo(log_nsr=-2.0)
    assert first["db"] > 60 and first["db"] > last["db"]
    np.testing.assert_array_equal(first["y"], last["y"])  # one curve, a moving marker
    assert first["here_x"].tolist() == [-12.0]
    clean = encdec.set12_crop(0, 40, 80, 64)
    assert first["db"] == pytest.approx(psnr(first["restored"], clean), abs=1e-3)


def test_set12_crop_rejects_a_crop_outside_the_image():
    if not _have(_set12):
        pytest.skip("Set12 is not available")
    with pytest.raises(ValueError, match="leave image"):
        encdec.set12_crop(0, 200, 0, 100)


# ------------------------------------------------------------------ deep image prior
def test_deep_image_prior_returns_curves_of_the_right_length_and_snapshots():
    clean = _scene(32)
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    run = encdec.deep_image_prior(noisy, clean, steps=30, depth=2, width=4, snapshot_every=8)
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
    a = encdec.deep_image_prior(noisy, steps=5, depth=1, width=4, snapshot_every=5, seed=2)
    b = encdec.deep_image_prior(noisy, steps=5, depth=1, width=4, snapshot_every=5, seed=2)
    np.testing.assert_array_equal(a["loss"], b["loss"])
    np.testing.assert_array_equal(a["snapshots"][5], b["snapshots"][5])
    assert a["psnr"] is None and a["best_iteration"] is None
    # a perturbed input changes the outputs, reproducibly; the first loss is then different too
    c = encdec.deep_image_prior(noisy, steps=5, depth=1, width=4, input_noise=1 / 30, seed=2)
    d = encdec.deep_image_prior(noisy, steps=5, depth=1, width=4, input_noise=1 / 30, seed=2)
    np.testing.assert_array_equal(c["loss"], d["loss"])
    assert c["loss"][0] != a["loss"][0] and c["settings"]["input_noise"] == pytest.approx(1 / 30)
    with pytest.raises(ValueError, match="input_noise"):
        encdec.deep_image_prior(noisy, steps=1, input_noise=-1)
    with pytest.raises(ValueError, match="shape of noisy"):
        encdec.deep_image_prior(noisy, np.zeros((8, 8)), steps=1)


def test_deep_image_prior_peaks_early_and_ends_up_reproducing_the_noise():
    clean = _scene(16)
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    run = encdec.deep_image_prior(noisy, clean, steps=300, depth=2, width=8, snapshot_every=300)
    assert run["loss"][-1] < 0.05 * 0.1**2                      # far below the noise variance
    assert abs(run["psnr"][-1] - psnr(noisy, clean)) < 0.5      # the output is the noisy image
    assert 0 < run["best_iteration"] < 300
    assert run["best_psnr"] > run["psnr"][-1] + 2               # its best was much cleaner


@needs_set12
def test_deep_image_prior_demo_steps_through_the_snapshots_of_one_run():
    demo = encdec.deep_image_prior_demo(size=32, steps=20, snapshot_every=5, depth=2, width=4)
    run = encdec.deep_image_prior_example(1, 64, 96, 32, 25.0, 0, 20, 5, 2, 4, 0.01, 0)["run"]
    assert [c.positions for c in demo.controls] == [[0, 5, 10, 15, 20]]
    frame = demo(iteration=10)
    np.testing.assert_array_equal(frame["output"], run["snapshots"][10])
    assert frame["db"] == pytest.approx(run["psnr"][10], abs=1e-3)
    assert frame["t"].tolist() == [0, 5, 10, 15, 20]
    with pytest.raises(ValueError, match="multiple of snapshot_every"):
        encdec.deep_image_prior_demo(size=32, steps=21, snapshot_every=5)
