"""Facts about the variational autoencoder of chapter 6."""

import numpy as np
import pytest
import torch

from nnimaging import vae
from imaging_samples import blobs, needs_mnist


# ------------------------------------------------------------------ VAE
def test_gaussian_kl_matches_torch_distributions():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    q = torch.distributions.Normal(torch.tensor(mu), torch.tensor(np.exp(0.5 * logvar)))
    p = torch.distributions.Normal(torch.zeros(5, 3, dtype=torch.float64),
                                   torch.ones(5, 3, dtype=torch.float64))
    expected = torch.distributions.kl_divergence(q, p).sum(-1).numpy()
    np.testing.assert_allclose(vae.gaussian_kl(mu, logvar), expected, rtol=1e-12)
    assert vae.gaussian_kl(np.zeros(4), np.zeros(4)) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        vae.gaussian_kl(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------ the VAE
def test_vae_shapes_and_its_reconstruction_uses_the_mean_code():
    model = vae.VAE(latent=3, hidden=16).double()
    x = torch.from_numpy(blobs(5)).double()[:, None]
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    assert model.decode_logits(mu).shape == (5, 1, 28, 28)
    torch.testing.assert_close(model(x), torch.sigmoid(model.decode_logits(mu)))
    with pytest.raises(ValueError, match="latent must be an integer >= 1"):
        vae.VAE(latent=0)


def test_train_vae_is_deterministic_and_records_the_two_terms_of_the_elbo():
    images = blobs(80)
    a, ha = vae.train_vae(images, latent=2, hidden=32, epochs=4, batch_size=20, seed=1)
    b, hb = vae.train_vae(images, latent=2, hidden=32, epochs=4, batch_size=20, seed=1)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    assert set(ha) == {"loss", "reconstruction", "kl"} and ha["loss"].shape == (4,)
    np.testing.assert_allclose(ha["loss"], ha["reconstruction"] + ha["kl"])
    np.testing.assert_array_equal(ha["loss"], hb["loss"])
    assert ha["loss"][-1] < ha["loss"][0] and np.all(ha["kl"] > 0)
    assert not a.training
    # the same network without sampling or KL term: a plain autoencoder
    ae, hae = vae.train_vae(images, latent=2, hidden=32, epochs=4, batch_size=20, seed=1,
                                     variational=False)
    assert not ae.variational and np.all(hae["kl"] == 0)
    assert hae["reconstruction"][-1] < hae["reconstruction"][0]


def test_train_vae_kl_term_is_gaussian_kl_of_the_encoder_output():
    images = blobs(10)
    model, history = vae.train_vae(images, latent=2, hidden=8, epochs=1, batch_size=10,
                                            lr=1e-12, seed=0)   # one step that changes nothing visible
    mu, logvar = model.encode(torch.from_numpy(images).double()[:, None])
    kl = vae.gaussian_kl(mu.detach().numpy(), logvar.detach().numpy()).mean()
    assert history["kl"][0] == pytest.approx(kl, rel=1e-6)


def test_encode_mean_and_decode_check_shapes():
    model = vae.VAE(latent=2, hidden=8).double().eval()
    codes = vae.encode_mean(model, blobs(4))
    assert codes.shape == (4, 2) and codes.dtype == np.float64
    pictures = vae.decode(model, codes)
    assert pictures.shape == (4, 28, 28) and pictures.min() >= 0 and pictures.max() <= 1
    with pytest.raises(ValueError, match=r"codes must have shape \(N, 2\)"):
        vae.decode(model, np.zeros((4, 3)))


def test_edge_energy_is_zero_for_flat_images_and_drops_when_blurred():
    assert vae.edge_energy(np.full((8, 8), 0.3)) == 0.0
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(float)
    assert vae.edge_energy(checker) == pytest.approx(1.0)
    sharp = blobs(6)
    padded = np.pad(sharp, ((0, 0), (1, 1), (1, 1)), mode="edge")
    blurred = sum(padded[:, 1 + i:29 + i, 1 + j:29 + j] for i in (-1, 0, 1) for j in (-1, 0, 1)) / 9
    assert np.all(vae.edge_energy(blurred) < vae.edge_energy(sharp))
    with pytest.raises(ValueError, match="images must have shape"):
        vae.edge_energy(np.zeros(5))


@needs_mnist
def test_vae_code_demo_decodes_the_chosen_code_with_the_remembered_model():
    demo = vae.code_space_demo(hidden=16, epochs=1, n_train=200, limit=1.0, step=0.5)
    assert demo.n_combinations == 25
    run = vae.vae_sweep((True,), 2, 16, 1, 200, 0)[True]
    frame = demo(z1=0.5, z2=-1.0)
    np.testing.assert_array_equal(frame["digit"], vae.decode(run["model"], [[0.5, -1.0]])[0])
    assert frame["here_x"].tolist() == [0.5] and frame["cx"].shape == (10,)
    assert set(run["heldout"]) == {"mse", "edge_energy", "edge_energy_input"}
