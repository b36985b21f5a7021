"""Facts about the chapter-6 helpers: autoencoders, ROC curves, the VAE."""

import itertools
import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from nnimaging import autoencoders
from nnimaging.models import ConvAutoencoder



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
    a_model, a_losses = autoencoders.train_autoencoder(images, latent=4, epochs=2, batch_size=16,
                                                 seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b_model, b_losses = autoencoders.train_autoencoder(images, latent=4, epochs=2, batch_size=16,
                                                 seed=3)
    np.testing.assert_array_equal(a_losses, b_losses)
    for p, q in zip(a_model.parameters(), b_model.parameters()):
        assert torch.equal(p, q)
    assert isinstance(a_model, ConvAutoencoder) and a_model.latent == 4 and not a_model.training
    _, c_losses = autoencoders.train_autoencoder(images, latent=4, epochs=2, batch_size=16, seed=4)
    assert not np.array_equal(a_losses, c_losses)


def test_train_autoencoder_records_one_loss_per_step_and_lowers_it():
    images = _blobs(100)
    model, losses = autoencoders.train_autoencoder(images, latent=8, epochs=6, batch_size=32, seed=0)
    assert losses.shape == (6 * math.ceil(100 / 32),)
    assert losses[-4:].mean() < 0.5 * losses[:4].mean()
    # the last recorded loss is the MSE of the last batch before the last step: the same order
    # of magnitude as the error of the trained model on all images
    errors = autoencoders.reconstruction_errors(model, images)
    assert errors.mean() < 0.5 * losses[:4].mean()


def test_reconstruction_errors_are_the_per_image_mean_squared_differences():
    images = _blobs(10)
    torch.manual_seed(0)
    model = ConvAutoencoder(latent=3).eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(images)[:, None])[:, 0].numpy()
    recon = autoencoders.reconstruct(model, images, batch_size=3)
    np.testing.assert_allclose(recon, expected, rtol=0, atol=1e-6)
    errors = autoencoders.reconstruction_errors(model, images)
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
        autoencoders.train_autoencoder(images, latent=2)


def test_tile_places_each_image_in_its_cell_with_gaps():
    images = np.arange(6 * 2 * 3, dtype=float).reshape(6, 2, 3)
    out = autoencoders.tile(images, ncols=4, gap=1, fill=-1)
    assert out.shape == (2 * 2 + 1, 4 * 3 + 3)
    np.testing.assert_array_equal(out[3:5, 4:7], images[5])
    np.testing.assert_array_equal(out[2], -1)
    np.testing.assert_array_equal(out[3:5, 8:], -1)  # two empty cells after the sixth image


@needs_mnist
def test_latent_sweep_scores_each_model_on_the_heldout_digits_and_the_demo_shows_them():
    from nnimaging.data import load_mnist

    sweep = autoencoders.latent_sweep((2, 6), epochs=1, n_train=300)
    heldout = load_mnist("heldout")[0]
    for k in (2, 6):
        assert sweep[k]["model"].latent == k
        assert sweep[k]["heldout_mse"] == pytest.approx(
            autoencoders.reconstruction_errors(sweep[k]["model"], heldout).mean())
    assert autoencoders.latent_sweep([2, 6], 1, 300, 32, 0) is sweep  # remembered, not retrained
    demo = autoencoders.latent_size_demo(latents=(2, 6), epochs=1, n_train=300, n_show=5)
    frame = demo(latent=6)
    assert frame["picture"].shape == (2 * 28 + 1, 5 * 28 + 4)
    np.testing.assert_array_equal(frame["picture"][:28, :28], heldout[0])
    assert frame["err"] == pytest.approx(sweep[6]["heldout_mse"])
    assert demo.args == {"latents": [2, 6], "epochs": 1, "n_train": 300, "n_show": 5}  # as called


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
        assert autoencoders.roc_auc(normal, anomalous) == pytest.approx(_auc_by_pairs(normal, anomalous))


def test_roc_auc_is_one_half_for_one_distribution_and_one_for_separable_scores():
    rng = np.random.default_rng(1)
    same = autoencoders.roc_auc(rng.normal(size=3000), rng.normal(size=3000))
    assert abs(same - 0.5) < 0.02
    assert autoencoders.roc_auc([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 0.5   # all ties
    assert autoencoders.roc_auc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0
    assert autoencoders.roc_auc([0.5, 0.9], [0.1, 0.2, 0.3]) == 0.0


def test_roc_curve_runs_from_nothing_to_everything_and_its_area_is_the_auc():
    rng = np.random.default_rng(2)
    normal = np.round(rng.normal(0, 1, 200), 1)            # rounding makes ties
    anomalous = np.round(rng.normal(1, 1, 150), 1)
    fpr, tpr, thresholds = autoencoders.roc_curve(normal, anomalous)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert thresholds[0] == np.inf and np.all(np.diff(thresholds[1:]) < 0)
    for t, f, p in zip(thresholds[1:], fpr[1:], tpr[1:]):
        assert f == np.mean(normal >= t) and p == np.mean(anomalous >= t)
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(autoencoders.roc_auc(normal, anomalous))


def test_roc_helpers_reject_empty_or_non_finite_scores():
    with pytest.raises(ValueError, match="at least one score"):
        autoencoders.roc_auc([], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        autoencoders.roc_curve([1.0, np.nan], [1.0])


# ------------------------------------------------------------------ images the model never saw
def test_image_patches_are_block_averages_of_random_crops():
    rng = np.random.default_rng(0)
    sources = [rng.random((40, 50)), rng.random((60, 36))]
    patches = autoencoders.image_patches(sources, n=5, size=6, zoom=3, seed=7)
    assert patches.shape == (5, 6, 6) and patches.dtype == np.float32
    draw = np.random.default_rng(7)   # the same draws, in the documented order
    for patch in patches:
        im = sources[draw.integers(2)]
        r, c = draw.integers(im.shape[0] - 18 + 1), draw.integers(im.shape[1] - 18 + 1)
        expected = im[r:r + 18, c:c + 18].reshape(6, 3, 6, 3).mean(axis=(1, 3))
        np.testing.assert_allclose(patch, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="smaller than the crop"):
        autoencoders.image_patches([np.zeros((10, 10))], n=1, size=6, zoom=2)


def test_draw_letters_makes_centred_white_on_black_glyphs_of_the_requested_height():
    letters = autoencoders.draw_letters("AHX", size=28, height=20)
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
        autoencoders.draw_letters("A B")


# ------------------------------------------------------------------ VAE
def test_gaussian_kl_matches_torch_distributions():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    p = torch.distributions.Normal(torch.zeros(5, 3, dtype=torch.float64),
                                   torch.ones(5, 3, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(q, p).sum(-1).numpy()
    np.testing.assert_allclose(autoencoders.gaussian_kl(mu, logvar), expected, rtol=1e-12)
    assert autoencoders.gaussian_kl(np.zeros(4), np.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        autoencoders.gaussian_kl(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------ U-Net


# ------------------------------------------------------------------ the VAE
def test_vae_shapes_and_its_reconstruction_uses_the_mean_code():
    model = autoencoders.VAE(latent=3, hidden=16).double()
    x = torch.from_numpy(_blobs(5)).double()[:, None]
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode_logits(mu).shape == (5, 1, 28, 28)
    torch.testing.assert_close(model(x), torch.sigmoid(model.decode_logits(mu)))
    with pytest.raises(ValueError, match="latent must be an integer >= 1"):
        autoencoders.VAE(latent=0)


def test_train_vae_is_deterministic_and_records_the_two_terms_of_the_elbo():
    images = _blobs(80)
    a, ha = autoencoders.train_vae(images, latent=2, hidden=32, epochs=4, batch_size=20, seed=1)
    b, hb = autoencoders.train_vae(images, latent=2, hidden=32, epochs=4, batch_size=20, seed=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert set(ha) == {"loss", "reconstruction", "kl"} and ha["loss"].shape == (4,)
    np.testing.assert_allclose(ha["loss"], ha["reconstruction"] + ha["kl"])
    np.testing.assert_array_equal(ha["loss"], hb["loss"])
    assert ha["loss"][-1] < ha["loss"][0] and np.all(ha["kl"] > 0)
    assert not a.training
    # the same network without sampling or KL term: a plain autoencoder
    ae, hae = autoencoders.train_vae(images, latent=2, hidden=32, epochs=4, batch_size=20, seed=1,
                                     variational=False)
    assert not ae.variational and np.all(hae["kl"] == 0)
    assert hae["reconstruction"][-1] < hae["reconstruction"][0]


def test_train_vae_kl_term_is_gaussian_kl_of_the_encoder_output():
    images = _blobs(10)
    model, history = autoencoders.train_vae(images, latent=2, hidden=8, epochs=1, batch_size=10,
                                            lr=1e-12, seed=0)   # one step that changes nothing visible
    mu, logvar = model.encode(torch.from_numpy(images).double()[:, None])
    kl = autoencoders.gaussian_kl(mu.detach().numpy(), logvar.detach().numpy()).mean()
    assert history["kl"][0] == pytest.approx(kl, rel=1e-6)


def test_encode_mean_and_decode_check_shapes():
    model = autoencoders.VAE(latent=2, hidden=8).double().eval()
    codes = autoencoders.encode_mean(model, _blobs(4))
    assert codes.shape == (4, 2) and codes.dtype == np.float64
    pictures = autoencoders.decode(model, codes)
    assert pictures.shape == (4, 28, 28) and pictures.min() >= 0 and pictures.max() <= 1
    with pytest.raises(ValueError, match=r"codes must have shape \(N, 2\)"):
        autoencoders.decode(model, np.zeros((4, 3)))


def test_edge_energy_is_zero_for_flat_images_and_drops_when_blurred():
    assert autoencoders.edge_energy(np.full((8, 8), 0.3)) == 0.0
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)
    assert autoencoders.edge_energy(checker) == pytest.approx(1.0)
    sharp = _blobs(6)
    padded = np.pad(sharp, ((0, 0), (1, 1), (1, 1)), mode="edge")
    blurred = sum(padded[:, 1 + i:29 + i, 1 + j:29 + j] for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9
    assert np.all(autoencoders.edge_energy(blurred) < autoencoders.edge_energy(sharp))
    with pytest.raises(ValueError, match="images must have shape"):
        autoencoders.edge_energy(np.zeros(5))


@needs_mnist
def test_vae_code_demo_decodes_the_chosen_code_with_the_remembered_model():
    demo = autoencoders.vae_code_demo(hidden=16, epochs=1, n_train=200, limit=1.0, step=0.5)
    assert demo.n_combinations == 25
    run = autoencoders.vae_sweep((True,), 2, 16, 1, 200, 0)[True]
    frame = demo(z1=0.5, z2=-1.0)
    np.testing.assert_array_equal(frame["digit"], autoencoders.decode(run["model"], [[0.5, -1.0]])[0])
    assert frame["here_x"].tolist() == [0.5] and frame["cx"].shape == (10,)
    assert set(run["heldout"]) == {"mse", "edge_energy", "edge_energy_input"}
