"""The DnCNN authors' published weights: safe reading, clear errors, and the paper's numbers pinned.

The conversion tests write small MatConvNet-like MATLAB v7.3 (HDF5) files with h5py, laid out as
MATLAB writes them (dimensions reversed, a trailing singleton squeezed, layers as a cell array of
references to structs). The pin tests need the real files (``NNIMAGING_WEIGHTS``, as CI sets it,
or the user cache) and the datasets; without them they are skipped, except in CI, where missing
weights are a failure.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import os
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnimaging import models, published, published_eval, results, weightstore
from nnimaging.published import PublishedWeightsError

PAPER_TOLERANCE_DB = 0.05


# ------------------------------------------------------------------ writing MatConvNet-like files
def _chars(text: str) -> np.ndarray:
    return np.array([ord(c) for c in text], dtype=np.uint16)[:, None]  # MATLAB char: uint16, (n, 1)


def write_matconvnet(path, layers) -> Path:
    """Write ``layers`` as MATLAB v7.3 stores a MatConvNet ``net`` struct.

    ``layers``: ``("conv", weight (out, in, kh, kw), bias (out,), {extra fields})``,
    ``("relu", leak)`` or ``(other_type,)``.
    """
    path = Path(path)
    with h5py.File(path, "w") as f:
        refs = f.create_group("#refs#")
        layer_refs = []
        for i, layer in enumerate(layers):
            kind = layer[0]
            g = refs.create_group(f"layer{i}")
            g["type"] = _chars(kind)
            g["name"] = _chars(f"layer{i + 1}")
            if kind == "conv":
                weight, bias = np.asarray(layer[1], np.float32), np.asarray(layer[2], np.float32)
                extra = layer[3] if len(layer) > 3 else {}
                stored = weight.transpose(0, 1, 3, 2)  # torch (out, in, kh, kw) -> MATLAB (kh, kw, in, out) reversed
                if stored.shape[0] == 1:
                    stored = stored[0]  # MATLAB drops the trailing singleton "out = 1"
                w_ds = refs.create_dataset(f"w{i}", data=stored)
                b_ds = refs.create_dataset(f"b{i}", data=bias[None, :])
                cell = g.create_dataset("weights", (2, 1), dtype=h5py.ref_dtype)
                cell[0, 0], cell[1, 0] = w_ds.ref, b_ds.ref
                g["stride"] = np.full((1, 1), extra.get("stride", 1.0))
                g["pad"] = np.full((1, 1), extra.get("pad", 1.0))
            elif kind == "relu":
                g["leak"] = np.full((1, 1), layer[1] if len(layer) > 1 else 0.0)
            layer_refs.append(g.ref)
        cells = f.create_group("net").create_dataset("layers", (len(layers), 1), dtype=h5py.ref_dtype)
        for i, ref in enumerate(layer_refs):
            cells[i, 0] = ref
    return path


def chain(depth: int, width: int = 64, seed: int = 0):
    """A random conv / relu / ... / conv chain of ``depth`` 3x3 convolutions, 1 -> width -> ... -> 1."""
    rng = np.random.default_rng(seed)
    layers = []
    for k in range(depth):
        cin = 1 if k == 0 else width
        cout = 1 if k == depth - 1 else width
        weight = rng.normal(0, np.sqrt(2 / (9 * cin)), (cout, cin, 3, 3)).astype(np.float32)
        layers.append(("conv", weight, rng.normal(0, 0.01, cout).astype(np.float32)))
        if k < depth - 1:
            layers.append(("relu", 0.0))
    return layers


def reference_forward(layers, x: torch.Tensor) -> torch.Tensor:
    """What a MatConvNet simplenn chain computes (correlation, zero padding 1), then input - output."""
    y = x
    for layer in layers:
        if layer[0] == "conv":
            y = F.conv2d(y, torch.from_numpy(layer[1]), torch.from_numpy(layer[2]), padding=1)
        else:
            y = torch.relu(y)
    return x - y


# ------------------------------------------------------------------ conversion
def test_reading_reverses_matlab_dimensions_and_unsqueezes_the_last_layer(tmp_path):
    layers = chain(3, width=4)
    path = write_matconvnet(tmp_path / "tiny.mat", layers)
    read = published.read_matconvnet(path)
    assert [layer["type"] for layer in read] == ["conv", "relu", "conv", "relu", "conv"]
    for mine, theirs in zip(layers[::2], read[::2]):
        np.testing.assert_array_equal(theirs["weight"], mine[1])  # (out, in, kh, kw), kh != kw order checked
        np.testing.assert_array_equal(theirs["bias"], mine[2])
    assert read[-1]["weight"].shape == (1, 4, 3, 3)


def test_a_published_chain_loads_into_the_books_dncnn_and_computes_the_same(tmp_path):
    layers = chain(17, seed=1)
    path = write_matconvnet(tmp_path / "sigma=25.mat", layers)
    model = published.load("zhang2017-dncnn-s25", path=path)
    assert isinstance(model, models.DnCNN) and not model.training
    assert model.config == {"architecture": "dncnn", "kwargs": {"depth": 17, "width": 64, "bias": True,
                                                                "batch_norm": False, "channels": 1, "residual": True}}
    assert models.count_parameters(model) == model.pretrained["parameters"] == 555_137
    x = torch.rand(2, 1, 23, 31)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference_forward(layers, x), rtol=1e-5, atol=1e-5)
    assert model.pretrained["source"] == published.source_url("zhang2017-dncnn-s25")
    assert "%3D" in model.pretrained["source"] and published.SOURCE_COMMIT in model.pretrained["source"]


def _expect(tmp_path, layers, match, name="zhang2017-dncnn-s25"):
    path = write_matconvnet(tmp_path / "bad.mat", layers)
    with pytest.raises(PublishedWeightsError, match=match) as info:
        published.load(name, path=path)
    message = str(info.value)
    assert str(path) in message and published.source_url(name) in message, message
    return message


def test_layers_that_are_not_the_expected_chain_are_named(tmp_path):
    layers = chain(17)
    with_bn = layers[:3] + [("bnorm",)] + layers[3:]
    _expect(tmp_path, with_bn, r"layer 4 \('layer4', type 'bnorm'\): not part of the expected chain")
    _expect(tmp_path, layers[:-2], r"31 layers \(16 convolutions\), expected the chain of 17")
    _expect(tmp_path, chain(20), r"39 layers .* expected the chain of 17")
    _expect(tmp_path, chain(20)[:-2], r"37 layers \(19 convolutions\), expected the chain of 20", name="zhang2017-dncnn-b")
    swapped = layers[:1] + [layers[2], layers[1]] + layers[3:]
    _expect(tmp_path, swapped, r"layer 2 \('layer2'\): expected a relu layer here, got conv")
    leaky = layers[:3] + [("relu", 0.1)] + layers[4:]
    _expect(tmp_path, leaky, r"layer 4 \('layer4'\): a leaky ReLU")
    narrow = chain(17, width=32)
    _expect(tmp_path, narrow, r"layer 1 \('layer1'\): filter bank of shape \(32, 1, 3, 3\) .* expected \(64, 1, 3, 3\)")
    strided = list(layers)
    strided[4] = ("conv", layers[4][1], layers[4][2], {"stride": 2.0})
    _expect(tmp_path, strided, r"layer 5 \('layer5'\): stride \[2.0\]")
    broken = list(layers)
    weight = layers[6][1].copy()
    weight[0, 0, 0, 0] = np.nan
    broken[6] = ("conv", weight, layers[6][2])
    _expect(tmp_path, broken, r"layer 7 \('layer7'\): weights that are not finite")


def test_corrupt_truncated_and_foreign_files_get_a_clear_error(tmp_path):
    good = write_matconvnet(tmp_path / "good.mat", chain(17))
    truncated = tmp_path / "truncated.mat"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"MATLAB 5.0 MAT-file, not HDF5" + bytes(range(256)) * 8)
    for path in (truncated, garbage):
        with pytest.raises(PublishedWeightsError, match="cannot read .* as a MATLAB v7.3 \\(HDF5\\) file") as info:
            published.load("zhang2017-dncnn-s25", path=path)
        assert str(path) in str(info.value) and "source https://raw.githubusercontent.com/cszn/DnCNN/" in str(info.value)
    other = tmp_path / "other.mat"
    with h5py.File(other, "w") as f:
        f["something"] = np.zeros(3)
    with pytest.raises(PublishedWeightsError, match=r"other.mat .* holds no MatConvNet network"):
        published.load("zhang2017-dncnn-s25", path=other)
    object_array = tmp_path / "objects.mat"
    write_matconvnet(object_array, chain(2, width=4))
    with h5py.File(object_array, "a") as f:  # a filter bank that is not numbers
        del f["#refs#/w0"]
        f["#refs#"].create_dataset("w0", data=np.array([b"import os"], dtype="S9"))
    with pytest.raises(PublishedWeightsError, match=r"layer 1 .*filter bank is not a numeric array"):
        published.read_matconvnet(object_array)


# ------------------------------------------------------------------ lookup: NNIMAGING_WEIGHTS, cache, download
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No NNIMAGING_WEIGHTS, an empty cache in tmp_path."""
    monkeypatch.delenv("NNIMAGING_WEIGHTS", raising=False)
    monkeypatch.setenv("NNIMAGING_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _register(monkeypatch, name, content: bytes):
    """Make ``name`` expect ``content`` (its SHA-256), so a synthetic file passes as the published one."""
    w = dataclasses.replace(published.WEIGHTS[name], sha256=hashlib.sha256(content).hexdigest())
    monkeypatch.setitem(published.WEIGHTS, name, w)


def test_nnimaging_weights_folder_is_used_and_checked(isolated, monkeypatch):
    folder = isolated / "weights"
    (folder / published.FOLDER).mkdir(parents=True)
    path = write_matconvnet(folder / published.FOLDER / "sigma=25.mat", chain(17))
    monkeypatch.setenv("NNIMAGING_WEIGHTS", str(folder))
    with pytest.raises(PublishedWeightsError, match=r"sigma=25.mat is not the published file .*source "
                       r"https://raw.githubusercontent.com/cszn/DnCNN/.*/model/specifics/sigma%3D25.mat"):
        published.fetch("zhang2017-dncnn-s25")
    _register(monkeypatch, "zhang2017-dncnn-s25", path.read_bytes())
    assert published.fetch("zhang2017-dncnn-s25") == path
    model = weightstore.load_pretrained("zhang2017-dncnn-s25")  # the book's call, dispatched here
    assert model.pretrained["name"] == "zhang2017-dncnn-s25"
    assert not (isolated / "cache").exists(), "a local copy is read in place, never copied into the cache"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over tmp_path/served, standing in for raw.githubusercontent.com."""
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_download_is_verified_and_a_bad_one_is_not_kept(isolated, monkeypatch, server):
    root, url = server
    monkeypatch.setattr(published, "_RAW", url)
    good = write_matconvnet(isolated / "good.mat", chain(17)).read_bytes()
    _register(monkeypatch, "zhang2017-dncnn-s25", good)
    served = root / "model" / "specifics" / "sigma=25.mat"  # requested as sigma%3D25.mat
    served.parent.mkdir(parents=True)
    cache = isolated / "cache" / published.FOLDER
    for bad in (good[: len(good) // 2], b"<html>rate limited</html>"):
        served.write_bytes(bad)
        with pytest.raises(PublishedWeightsError, match=r"download of dncnn-zhang2017/sigma=25.mat .*source "
                           rf"{url}model/specifics/sigma%3D25.mat.* rejected and not kept in the cache"):
            published.fetch("zhang2017-dncnn-s25")
        assert not cache.exists() or not any(cache.iterdir()), "nothing is left in the cache"
    served.write_bytes(good)
    path = published.fetch("zhang2017-dncnn-s25")
    assert path == cache / "sigma=25.mat" and path.read_bytes() == good
    served.unlink()  # the second call reads the cache
    assert published.fetch("zhang2017-dncnn-s25") == path
    path.write_bytes(good[:100])  # a damaged cached copy is not used (pooch fetches it again)
    with pytest.raises(weightstore.WeightsNotFoundError):
        published.fetch("zhang2017-dncnn-s25")


def test_unreachable_source_says_how_to_work_offline(isolated, monkeypatch):
    monkeypatch.setattr(published, "_RAW", "http://127.0.0.1:9/")  # the discard port: connection refused
    with pytest.raises(weightstore.WeightsNotFoundError, match=r"(?s)cannot get the weights 'zhang2017-dncnn-b': "
                       r"NNIMAGING_WEIGHTS is not set.*GD_Gray_Blind.mat.*set NNIMAGING_WEIGHTS"):
        published.fetch("zhang2017-dncnn-b")


# ------------------------------------------------------------------ listing
def test_available_lists_the_published_weights_beside_the_books_own(tmp_path):
    entries = {e["name"]: e for e in weightstore.available()}
    assert set(published.NAMES) <= set(entries)
    for name in published.NAMES:
        entry = entries[name]
        assert entry["source"].startswith(f"https://raw.githubusercontent.com/cszn/DnCNN/{published.SOURCE_COMMIT}/")
        assert {"file", "architecture", "kwargs", "training", "sha256"} <= set(entry)
    assert entries["zhang2017-dncnn-s25"]["published"]["bsd68 sigma=25"] == 29.23
    assert entries["zhang2017-dncnn-s25"]["published"]["set12 sigma=25"] == 30.44
    assert entries["zhang2017-dncnn-b"]["published"]["bsd68 sigma=50"] == 26.23
    assert [e["name"] for e in weightstore.available(tmp_path)] == []  # another weights folder: its own entries only
    assert {e["name"] for e in weightstore.available(tmp_path, published=True)} == set(published.NAMES)


def test_unknown_name_is_rejected():
    with pytest.raises(KeyError, match="zhang2017-dncnn-s25"):
        published.fetch("zhang2017-dncnn-s30")


# ------------------------------------------------------------------ DnCNN-3 inputs
def test_dncnn3_degradations():
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(0.5, 0.2, (50, 37)), 0, 1).astype(np.float32)
    up, ref = published_eval.degrade(image, "sr", 3)
    assert up.shape == ref.shape == (48, 36) and up.dtype == np.float32
    np.testing.assert_array_equal(np.round(up * 255), up * 255)  # 8-bit values, as MATLAB's uint8 imresize
    flat = np.full((24, 24), 0.4, np.float32)
    np.testing.assert_allclose(published_eval.bicubic_rescale(flat, 2), flat, atol=1 / 255)
    decoded, ref = published_eval.degrade(image, "jpeg", 10)
    assert decoded.shape == image.shape and ref is not None
    assert np.abs(decoded - image).mean() > np.abs(published_eval.jpeg(image, 90) - image).mean()
    noisy, _ = published_eval.degrade(image, "denoise", 25, seed=3)
    assert 20 < 255 * np.std(noisy - image) < 30
    with pytest.raises(ValueError, match="task must be"):
        published_eval.degrade(image, "deblur", 1)


# ------------------------------------------------------------------ the real weights: pinned to the paper
def _weights_here(names) -> bool:
    folders = [os.environ.get("NNIMAGING_WEIGHTS")]
    try:
        from nnimaging.data import cache_dir

        folders.append(str(cache_dir()))
    except Exception:  # noqa: BLE001 - no pooch: no cache
        pass
    return all(any(f and (Path(f) / published.WEIGHTS[n].relpath).is_file() for f in folders) for n in names)


def _need_weights(*names):
    """Skip without the published files, except in CI, where they must be there (NNIMAGING_WEIGHTS)."""
    if _weights_here(names):
        return
    message = (f"the published weights {', '.join(names)} are not in NNIMAGING_WEIGHTS "
               f"({os.environ.get('NNIMAGING_WEIGHTS', 'not set')}) nor in the cache; point NNIMAGING_WEIGHTS at "
               "the shared/weights folder")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _images(dataset):
    from nnimaging.data import load_images

    try:
        return load_images(dataset, return_names=True)
    except Exception as err:  # noqa: BLE001
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{dataset} is not available: {err}")


def test_results_file_reproduces_the_papers_table():
    record = results.load("published_dncnn")
    rows = {(r["model"], r["dataset"], r["sigma"]): r for r in record["rows"]}
    paper = {("zhang2017-dncnn-s15", "bsd68", 15.0): 31.73, ("zhang2017-dncnn-s25", "bsd68", 25.0): 29.23,
             ("zhang2017-dncnn-s50", "bsd68", 50.0): 26.23, ("zhang2017-dncnn-b", "bsd68", 15.0): 31.61,
             ("zhang2017-dncnn-b", "bsd68", 25.0): 29.16, ("zhang2017-dncnn-b", "bsd68", 50.0): 26.23,
             ("zhang2017-dncnn-s25", "set12", 25.0): 30.44}
    for key, db in paper.items():
        row = rows[key]
        assert row["published"] == db and row["images"] == (68 if key[1] == "bsd68" else 12), key
        assert row["sha256"] == published.WEIGHTS[key[0]].sha256, key
        assert abs(row["mean_psnr"] - db) <= PAPER_TOLERANCE_DB, (key, row["mean_psnr"], db)
    assert record["command"].startswith("python -m nnimaging.experiments published-dncnn")


def test_set12_sigma25_recomputed_matches_the_paper_and_the_results_file():
    """The pin: load the authors' file, run the book's protocol, land within 0.05 dB of the paper (30.44)."""
    _need_weights("zhang2017-dncnn-s25")
    from nnimaging.evaluate import evaluate_denoiser

    images, names = _images("set12")
    torch.set_num_threads(2)  # the autouse fixture restores one thread afterwards
    model = weightstore.load_pretrained("zhang2017-dncnn-s25")
    measured = evaluate_denoiser(model, images, 25.0, 0, names)
    assert abs(measured["mean_psnr"] - 30.44) <= PAPER_TOLERANCE_DB, measured["mean_psnr"]
    stored = {(r["model"], r["dataset"], r["sigma"]): r for r in results.load("published_dncnn")["rows"]}
    row = stored[("zhang2017-dncnn-s25", "set12", 25.0)]
    assert measured["mean_psnr"] == pytest.approx(row["mean_psnr"], abs=1e-3)


@pytest.mark.parametrize("name", ["zhang2017-dncnn-s25", "zhang2017-dncnn-b"])
def test_bsd68_sigma25_subset_recomputed_matches_the_results_file(name):
    """Five BSD68 images per model, image by image: ties the stored BSD68 numbers to today's code."""
    _need_weights(name)
    from nnimaging.evaluate import evaluate_denoiser

    images, names = _images("bsd68")
    torch.set_num_threads(2)
    measured = evaluate_denoiser(weightstore.load_pretrained(name), images[:5], 25.0, 0, names[:5])
    stored = {(r["model"], r["dataset"], r["sigma"]): r for r in results.load("published_dncnn")["rows"]}
    per_image = stored[(name, "bsd68", 25.0)]["per_image"]
    for row in measured["images"]:
        assert row["psnr"] == pytest.approx(per_image[row["name"]], abs=2e-3), row["name"]


def test_dncnn3_results_file_is_reproduced_on_two_images():
    _need_weights("zhang2017-dncnn-3")
    from nnimaging.evaluate import denoise

    record = results.load("dncnn3")
    assert record["command"].startswith("python -m nnimaging.experiments dncnn3")
    rows = {(r["task"], r["level"]): r for r in record["rows"]}
    assert set(rows) == {(t, lv) for t, levels in published_eval.DNCNN3_TASKS.items() for lv in levels}
    for row in rows.values():
        assert row["dncnn3_psnr"] > row["baseline_psnr"], row["task"]  # one network beats every plain baseline
    images, names = _images(record["dataset"])
    torch.set_num_threads(2)
    model = weightstore.load_pretrained("zhang2017-dncnn-3")
    for task, level in (("sr", 3), ("jpeg", 10), ("denoise", 50)):
        for image_name in ("01", "05"):
            degraded, reference = published_eval.degrade(images[names.index(image_name)], task, level, record["seed"])
            got = [published_eval._task_psnr(degraded, reference, task, level),
                   published_eval._task_psnr(denoise(model, degraded), reference, task, level)]
            assert got == pytest.approx(rows[(task, level)]["per_image"][image_name], abs=2e-3), (task, level)
