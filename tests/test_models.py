"""Facts about the denoisers (DnCNN, U-Net) and the pretrained-weights mechanism."""

import hashlib
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnimaging import _checks, models, weightstore
from nnimaging.models import DnCNN, UNet


def dncnn_parameters(depth, width, channels=1, bias=False):
    """Closed form: first conv 9*c*w, (depth-2) x (conv 9*w*w + BatchNorm scale and shift 2*w), last conv 9*w*c."""
    return 9 * channels * width + (depth - 2) * (9 * width * width + 2 * width) + 9 * width * channels + (
        width + channels if bias else 0
    )


# ------------------------------------------------------------------------------ DnCNN


def test_dncnn_layers_follow_the_paper():
    model = DnCNN()  # depth 17, width 64
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(convs) == 17 and len(bns) == 15 and len(relus) == 16
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert (convs[0].in_channels, convs[0].out_channels) == (1, 64)
    assert all((c.in_channels, c.out_channels) == (64, 64) for c in convs[1:-1])
    assert (convs[-1].in_channels, convs[-1].out_channels) == (64, 1)
    assert all(c.bias is None for c in convs[1:-1]), "middle convolutions are followed by BatchNorm: no bias"
    # order: Conv ReLU, then (Conv BN ReLU) x 15, then Conv
    kinds = [type(m).__name__ for m in model.layers]
    assert kinds == ["Conv2d", "ReLU"] + ["Conv2d", "BatchNorm2d", "ReLU"] * 15 + ["Conv2d"]


def test_dncnn_without_batch_norm_and_bias_is_positively_homogeneous():
    torch.manual_seed(0)
    model = DnCNN(depth=5, width=8, bias=False, batch_norm=False).eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Conv2d))
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        for a in (0.1, 2.0, 7.5):
            torch.testing.assert_close(model(a * x), a * model(x), rtol=1e-5, atol=1e-6)
    biased = DnCNN(depth=5, width=8, bias=True, batch_norm=False).eval()
    assert all(m.bias is not None for m in biased.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        for m in biased.modules():
            if isinstance(m, nn.Conv2d):
                m.bias.fill_(0.05)
        assert not torch.allclose(biased(2 * x), 2 * biased(x), atol=1e-4), "a bias breaks the homogeneity"
    # parameters: the paper's count minus the BatchNorm scales and shifts, plus a bias per conv
    assert models.count_parameters(biased) == 9 * 8 + 3 * 9 * 64 + 9 * 8 + 4 * 8 + 1
    assert biased.config["kwargs"]["batch_norm"] is False
    assert "batch_norm" not in DnCNN(depth=3, width=4).config["kwargs"], "paper models keep their manifest kwargs"


def test_untrained_residual_models_start_as_the_identity():
    x = torch.rand(2, 1, 24, 24)
    for model in (DnCNN(depth=5, width=8), UNet(depth=2, width=4), DnCNN(depth=4, width=8, batch_norm=False)):
        with torch.no_grad():
            torch.testing.assert_close(model.eval()(x), x, rtol=0, atol=0)
            assert model.estimate_noise(x).abs().max() == 0
    # a model that predicts the image keeps a random last layer (zero would output a black image)
    with torch.no_grad():
        assert DnCNN(depth=4, width=8, residual=False).eval()(x).abs().max() > 0


def test_dncnn_bias_option_touches_first_and_last_conv_only():
    convs = [m for m in DnCNN(depth=5, width=8, bias=True).modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].bias is not None and convs[-1].bias is not None
    assert all(c.bias is None for c in convs[1:-1])


def test_dncnn_parameter_count_matches_closed_form():
    assert dncnn_parameters(17, 64) == 556_032
    assert models.count_parameters(DnCNN()) == 556_032
    assert models.count_parameters(DnCNN(bias=True)) == 556_032 + 64 + 1
    for depth, width, bias in [(2, 3, False), (3, 5, True), (20, 64, False), (6, 16, True)]:
        assert models.count_parameters(DnCNN(depth, width, bias=bias)) == dncnn_parameters(depth, width, bias=bias)


@pytest.mark.parametrize("shape", [(1, 1, 33, 47), (3, 1, 7, 5), (2, 1, 1, 1)])
def test_dncnn_keeps_any_input_size(shape):
    model = DnCNN(depth=6, width=8).eval()
    with torch.no_grad():
        assert model(torch.rand(shape)).shape == shape


def test_dncnn_is_residual_returns_input_minus_predicted_noise():
    torch.manual_seed(0)
    model = DnCNN(depth=5, width=8).eval()
    x = torch.rand(2, 1, 12, 9)
    with torch.no_grad():
        noise = model.layers(x)
        torch.testing.assert_close(model(x), x - noise)
        torch.testing.assert_close(model.estimate_noise(x), noise)
    direct = DnCNN(depth=5, width=8, residual=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(direct(x), direct.layers(x))
        torch.testing.assert_close(direct.estimate_noise(x), x - direct.layers(x))


def test_dncnn_receptive_field_is_2_depth_plus_1():
    # each 3x3 layer widens the region an output pixel depends on by one pixel per side
    torch.manual_seed(0)
    depth = 5
    model = DnCNN(depth=depth, width=16).eval()
    nn.init.normal_(model.layers[-1].weight)  # trained weights are not zero (the initial last layer is)
    x = torch.rand(1, 1, 31, 31, requires_grad=True)
    model.estimate_noise(x)[0, 0, 15, 15].backward()
    rows, cols = np.nonzero(x.grad[0, 0].numpy())
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (15 - depth, 15 + depth, 15 - depth, 15 + depth)


# ------------------------------------------------------------------------------ U-Net


@pytest.mark.parametrize("upsample", ["transpose", "bilinear", "nearest"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_unet_output_shape_equals_input_shape_for_any_size(depth, upsample):
    model = UNet(depth=depth, width=4, upsample=upsample).eval()
    with torch.no_grad():
        for h, w in [(16, 16), (17, 23), (9, 31), (5, 5), (1, 3)]:
            assert model(torch.rand(2, 1, h, w)).shape == (2, 1, h, w)


def test_unet_pads_by_reflection_and_crops_back():
    torch.manual_seed(0)
    model = UNet(depth=2, width=4).eval()
    x = torch.rand(1, 1, 13, 10)
    padded = F.pad(x, (0, 2, 0, 3), mode="reflect")  # to 16 x 12, multiples of 2**2
    with torch.no_grad():
        torch.testing.assert_close(model.estimate_noise(x), model.body_forward(padded)[..., :13, :10])


def test_unet_structure_levels_and_skip_concatenation():
    model = UNet(depth=3, width=8)
    assert [block[0].out_channels for block in model.encoder] == [8, 16, 32, 64]
    # decoder blocks see the upsampled features concatenated with the skip: twice the channels
    assert [block[0].in_channels for block in model.decoder] == [64, 32, 16]
    assert all(isinstance(up, nn.ConvTranspose2d) and up.stride == (2, 2) for up in model.up)
    assert model.head.out_channels == 1
    assert not any(isinstance(m, nn.BatchNorm2d) for m in UNet(depth=2, width=4, batch_norm=False).modules())


def test_unet_residual_convention():
    torch.manual_seed(0)
    model = UNet(depth=2, width=4).eval()
    x = torch.rand(1, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), x - model.body_forward(x))


# ------------------------------------------------------------------------------ input checks


@pytest.mark.parametrize("model", [DnCNN(depth=3, width=4), UNet(depth=1, width=4)])
def test_inputs_are_checked_with_clear_errors(model):
    with pytest.raises(TypeError, match=r"torch.Tensor.*numpy.ndarray"):
        model(np.zeros((1, 1, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\), got shape \(8, 8\).*x\[None, None\]"):
        model(torch.zeros(8, 8))
    with pytest.raises(ValueError, match=r"1 channel.*got shape \(1, 3, 8, 8\)"):
        model(torch.zeros(1, 3, 8, 8))
    with pytest.raises(TypeError, match=r"float32.*got torch.float64"):
        model(torch.zeros(1, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(TypeError, match=r"float32.*got torch.uint8"):
        model(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="depth must be an integer >= 2"):
        DnCNN(depth=1)
    with pytest.raises(ValueError, match="upsample"):
        UNet(upsample="pixelshuffle")
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        models.build_model("resnet")
    assert models.build_model("dncnn", depth=4, width=8).config == {
        "architecture": "dncnn",
        "kwargs": {"depth": 4, "width": 8, "bias": False, "channels": 1, "residual": True},
    }


# ------------------------------------------------------------------------------ pretrained weights


def _tiny(seed=0, **kwargs):
    torch.manual_seed(seed)
    model = DnCNN(depth=kwargs.pop("depth", 4), width=kwargs.pop("width", 8), **kwargs)
    # non-trivial BatchNorm statistics, so that the round trip checks buffers as well
    model.train()
    with torch.no_grad():
        model(torch.rand(4, 1, 10, 10))
    return model.eval()


def test_save_and_load_pretrained_round_trip(tmp_path):
    model = _tiny()
    entry = weightstore.save_pretrained(model, "tiny", {"noise": {"sigma": 25}, "steps": 3}, weights_dir=tmp_path)
    assert entry["sha256"] == hashlib.sha256((tmp_path / "tiny.pt").read_bytes()).hexdigest()
    listed = weightstore.available(tmp_path)
    assert [e["name"] for e in listed] == ["tiny"]
    assert listed[0]["architecture"] == "dncnn" and listed[0]["kwargs"]["depth"] == 4
    assert listed[0]["training"] == {"noise": {"sigma": 25}, "steps": 3}
    loaded = weightstore.load_pretrained("tiny", weights_dir=tmp_path)
    assert not loaded.training
    assert all(p.device.type == "cpu" for p in loaded.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    x = torch.rand(1, 1, 9, 11)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert loaded.pretrained["name"] == "tiny"
    # a second export under another name keeps the first; re-exporting a name replaces it
    weightstore.save_pretrained(_tiny(1), "another", weights_dir=tmp_path)
    weightstore.save_pretrained(_tiny(2), "tiny", weights_dir=tmp_path)
    assert [e["name"] for e in json.loads((tmp_path / "manifest.json").read_text())] == ["another", "tiny"]


def test_checksum_mismatch_is_rejected(tmp_path):
    weightstore.save_pretrained(_tiny(), "tiny", weights_dir=tmp_path)
    path = tmp_path / "tiny.pt"
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        weightstore.load_pretrained("tiny", weights_dir=tmp_path)


def _write_manifest(tmp_path, name, model_for_file, architecture_kwargs):
    torch.save(model_for_file.state_dict(), tmp_path / f"{name}.pt")
    entry = {
        "name": name,
        "file": f"{name}.pt",
        "architecture": "dncnn",
        "kwargs": architecture_kwargs,
        "training": {},
        "sha256": weightstore.sha256_file(tmp_path / f"{name}.pt"),
    }
    (tmp_path / "manifest.json").write_text(json.dumps([entry]))


def test_incompatible_state_dict_is_rejected_with_clear_message(tmp_path):
    _write_manifest(tmp_path, "deeper", _tiny(depth=4), {"depth": 5, "width": 8})
    with pytest.raises(ValueError, match=r"incompatible weights file .*missing keys \['layers.9.weight'"):
        weightstore.load_pretrained("deeper", weights_dir=tmp_path)
    _write_manifest(tmp_path, "wider", _tiny(width=8), {"depth": 4, "width": 16})
    with pytest.raises(ValueError, match=r"shape mismatch \['layers.0.weight: file \(8, 1, 3, 3\) vs model \(16, 1, 3, 3\)"):
        weightstore.load_pretrained("wider", weights_dir=tmp_path)
    _write_manifest(tmp_path, "biased", _tiny(bias=True), {"depth": 4, "width": 8})
    with pytest.raises(ValueError, match=r"unexpected keys \['layers.0.bias'"):
        weightstore.load_pretrained("biased", weights_dir=tmp_path)


def test_missing_weights_name_the_training_command(tmp_path):
    with pytest.raises(weightstore.WeightsNotFoundError, match=r"(?s)dncnn-s25.*none yet.*python -m nnimaging.train dncnn"):
        weightstore.load_pretrained("dncnn-s25", weights_dir=tmp_path)
    weightstore.save_pretrained(_tiny(), "tiny", weights_dir=tmp_path)
    (tmp_path / "tiny.pt").unlink()
    with pytest.raises(weightstore.WeightsNotFoundError, match=r"(?s)tiny.pt is missing.*--export tiny"):
        weightstore.load_pretrained("tiny", weights_dir=tmp_path)


def test_shipped_manifest_is_valid_and_every_entry_loads():
    entries = [e for e in weightstore.available() if "source" not in e]  # published weights: tests/test_published.py
    assert isinstance(entries, list)
    for entry in entries:
        model = weightstore.load_pretrained(entry["name"])
        assert model.config == {"architecture": entry["architecture"], "kwargs": entry["kwargs"]}
        assert entry["training"], "shipped weights record how they were trained"


def test_install_weights_copies_verified_files_and_merges_manifests(tmp_path):
    export, run, target = tmp_path / "export", tmp_path / "run", tmp_path / "package"
    weightstore.save_pretrained(_tiny(0), "kept", weights_dir=target)
    weightstore.save_pretrained(_tiny(1), "a", {"steps": 1}, weights_dir=export)
    entry = weightstore.save_pretrained(_tiny(2), "b", weights_dir=run, update_manifest=False)
    (run / "manifest_entry.json").write_text(json.dumps(entry))  # what a training run directory holds
    weightstore.install_weights(export, weights_dir=target)
    weightstore.install_weights(run, weights_dir=target)
    assert [e["name"] for e in weightstore.available(target)] == ["a", "b", "kept"]
    loaded = weightstore.load_pretrained("b", weights_dir=target)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in _tiny(2).state_dict().items())
    data = bytearray((run / "b.pt").read_bytes())
    data[-30] ^= 0xFF
    (run / "b.pt").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        weightstore.install_weights(run, weights_dir=target)


# ------------------------------------------------------------------------------ convolutional autoencoder


def _strokes(n, seed=0):
    """MNIST-like images: three soft strokes (line segments, about 2 pixels wide) in a 28 x 28 frame."""
    rng = np.random.default_rng(seed)
    pixels = np.stack(np.mgrid[0:28, 0:28], -1).astype(np.float64)[None, None]  # (1, 1, 28, 28, 2)
    ends = rng.uniform(6, 22, (n, 3, 2, 2))  # image, stroke, endpoint, (row, col)
    a, d = ends[:, :, 0, None, None], (ends[:, :, 1] - ends[:, :, 0])[:, :, None, None]
    t = np.clip(((pixels - a) * d).sum(-1) / (d**2).sum(-1), 0, 1)  # nearest point of each segment
    dist2 = ((pixels - a - t[..., None] * d) ** 2).sum(-1)
    return torch.from_numpy(np.exp(-dist2 / 2).max(1).astype(np.float32))[:, None]


@pytest.mark.parametrize("latent", [1, 2, 16, 64])
def test_autoencoder_shapes_and_output_range(latent):
    torch.manual_seed(0)
    model = models.ConvAutoencoder(latent=latent, width=4)
    x = torch.rand(3, 1, 28, 28)
    z = model.encode(x)
    assert z.shape == (3, latent) and z.dtype == torch.float32
    assert model.decode(z).shape == (3, 1, 28, 28)
    out = model(x)
    torch.testing.assert_close(out, model.decode(model.encode(x)))
    assert out.shape == x.shape and out.min() > 0 and out.max() < 1  # sigmoid output
    assert model.decode(torch.full((2, latent), 1e3)).max() <= 1  # stays in range for extreme codes


def test_autoencoder_halves_resolution_twice_then_mirrors_back():
    model = models.ConvAutoencoder(latent=10, width=8)
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.stride, c.out_channels) for c in convs] == [((2, 2), 8), ((2, 2), 16)]
    assert model.encoder[-1].in_features == 16 * 7 * 7 and model.decoder[0].out_features == 16 * 7 * 7
    feature = model.encoder[:4](torch.zeros(1, 1, 28, 28))
    assert feature.shape == (1, 16, 7, 7)
    ups = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert [u.stride for u in ups] == [(2, 2), (2, 2)] and ups[-1].out_channels == 1


def test_autoencoder_inputs_are_checked():
    model = models.ConvAutoencoder(latent=8, width=4)
    with pytest.raises(ValueError, match=r"28 x 28 pixels.*got shape \(1, 1, 32, 32\)"):
        model(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match=r"1 channel.*got shape \(1, 3, 28, 28\)"):
        model.encode(torch.zeros(1, 3, 28, 28))
    with pytest.raises(ValueError, match=r"codes of shape \(N, 8\), got shape \(2, 5\)"):
        model.decode(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="float32, got torch.float64"):
        model.decode(torch.zeros(2, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="latent must be an integer >= 1"):
        models.ConvAutoencoder(latent=0)
    double = models.ConvAutoencoder(latent=8, width=4).double()  # float64 models take float64 inputs
    assert double(torch.zeros(1, 1, 28, 28, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(TypeError, match=r"dtype torch.float64 .*got torch.float32; convert with x.double"):
        double(torch.zeros(1, 1, 28, 28))


def _mnist_subset():
    import os

    if not os.environ.get("NNIMAGING_DATA"):
        pytest.skip("NNIMAGING_DATA is not set (real MNIST)")
    from nnimaging.data import load_mnist

    images, _ = load_mnist("train")
    return torch.from_numpy(images[:256])[:, None]


@pytest.mark.parametrize("source", ["synthetic", "mnist"])
def test_autoencoder_training_halves_the_reconstruction_error(source):
    images = _strokes(256) if source == "synthetic" else _mnist_subset()
    torch.manual_seed(0)
    model = models.ConvAutoencoder(latent=16, width=8)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        before = F.mse_loss(model(images), images).item()
    for _ in range(200):
        batch = images[torch.randint(0, len(images), (32,), generator=generator)]
        loss = F.mse_loss(model(batch), batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        after = F.mse_loss(model(images), images).item()
    assert after < before / 2
    # and better than the best image that ignores its input, the mean image
    assert after < F.mse_loss(images.mean(0, keepdim=True).expand_as(images), images).item()


def test_training_stages_follow_the_init_chain_oldest_first():
    first = {"steps": 100, "batch_size": 16, "elapsed_s": 60.0, "command": "a"}
    second = {"steps": 50, "batch_size": 16, "elapsed_s": 30.0, "command": "b",
              "init": {"from": "x.pt", "sha256": "0" * 64, "training": first}}
    third = {"steps": 10, "batch_size": 8, "elapsed_s": 5.0, "command": "c",
             "init": {"from": "y.pt", "sha256": "1" * 64, "training": second}}
    stages = weightstore.training_stages({"name": "m", "training": third})
    assert [s["command"] for s in stages] == ["a", "b", "c"]
    assert all("init" not in s for s in stages)
    assert sum(s["steps"] for s in stages) == 160
    assert weightstore.training_stages({"training": first}) == [first]
    with pytest.raises(ValueError, match="'training' record"):
        weightstore.training_stages({"name": "m"})


def test_the_weights_store_is_its_own_module_and_models_holds_only_architectures():
    for name in ("available", "load_pretrained", "save_pretrained", "install_weights", "load_run", "RECIPES",
                 "WEIGHTS_DIR", "check_state_dict", "sha256_file", "training_stages"):
        assert hasattr(weightstore, name) and name in weightstore.__all__, name
        assert not hasattr(models, name), name     # one home: models builds networks, weightstore stores them
    assert weightstore.WeightsNotFoundError is _checks.WeightsNotFoundError
