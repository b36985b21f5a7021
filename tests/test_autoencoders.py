"""Facts about the autoencoders of chapter 6."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

from nnimaging import autoencoders
from nnimaging.models import ConvAutoencoder
from imaging_samples import blobs, needs_mnist


# ------------------------------------------------------------------ autoencoders
def test_train_autoencoder_is_deterministic_and_leaves_the_global_random_state_alone():
    images = blobs(64)
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
    images = blobs(100)
    model, losses = autoencoders.train_autoencoder(images, latent=8, epochs=6, batch_size=32, seed=0)
    assert losses.shape == (6 * math.ceil(100 / 32),)
    assert losses[-4:].mean() < 0.5 * losses[:4].mean()
    # the last recorded loss is the MSE of the last batch before the last step: the same order
    # of magnitude as the error of the trained model on all images
    errors = autoencoders.reconstruction_errors(model, images)
    assert errors.mean() < 0.5 * losses[:4].mean()


def test_reconstruction_errors_are_the_per_image_mean_squared_differences():
    images = blobs(10)
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
