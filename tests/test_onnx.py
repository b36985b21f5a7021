"""The ONNX export of the book's denoisers: ONNX Runtime gives PyTorch's output on real images.

The browser denoiser runs these graphs in ONNX Runtime Web; here ONNX Runtime (Python, the same
release, see requirements-dev.txt) runs them on crops of Set12 images of odd and even sizes,
including sizes that are not multiples of the U-Net's 2**depth, against ``model(x)`` in PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnimaging.data import load_images
from nnimaging.weightstore import load_pretrained
from nnimaging.onnx_export import INPUT, cached_export, export_bytes, min_size
from nnimaging.webdenoiser import WEB_MODELS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4
# (image, top, left, height, width): odd, even, prime and full sizes, one not a multiple of 8 at all
CROPS = [(0, 0, 0, 256, 256), (2, 17, 5, 121, 97), (4, 3, 40, 64, 200), (8, 101, 7, 233, 131),
         (11, 0, 0, 9, 23)]


@pytest.fixture(scope="module")
def set12():
    return load_images("set12")


@pytest.fixture(scope="module", params=WEB_MODELS)
def exported(request):
    model = load_pretrained(request.param)
    data = export_bytes(model)
    assert not model.training, "the export left the model in training mode (BatchNorm on batch stats)"
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return request.param, model, data, session


def test_graph_has_one_input_and_output_of_any_batch_height_and_width(exported):
    name, model, data, _ = exported
    graph = onnx.load_from_string(data).graph
    onnx.checker.check_model(onnx.load_from_string(data))
    assert [i.name for i in graph.input] == [INPUT]
    for value in (graph.input[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        assert dims[1].dim_value == 1  # one channel: grayscale
        assert all(dims[i].dim_param and not dims[i].dim_value for i in (0, 2, 3)), \
            f"{name}: N, H, W are not dynamic"
    weights = sum(t.ByteSize() for t in graph.initializer)
    assert weights < 4 * sum(p.numel() for p in model.parameters()) * 1.1  # float32, nothing doubled


def test_onnx_runtime_matches_pytorch_on_set12(exported, set12):
    name, model, _, session = exported
    noise = np.random.default_rng(0)
    for index, top, left, height, width in CROPS:
        clean = set12[index][top:top + height, left:left + width]
        assert clean.shape == (height, width)
        assert min(height, width) >= min_size(model)
        noisy = (clean + noise.normal(0, 25 / 255, clean.shape)).astype(np.float32)[None, None]
        with torch.inference_mode():
            expected = model(torch.from_numpy(noisy)).numpy()
        got = session.run(None, {INPUT: noisy})[0]
        assert got.shape == expected.shape, (name, clean.shape)
        error = float(np.abs(got - expected).max())
        assert error < TOLERANCE, f"{name} on set12[{index}] crop {height}x{width}: max error {error:.2e}"


def test_cached_export_is_reused_and_named_after_the_weights(tmp_path):
    first = cached_export("dncnn-s25", tmp_path)
    stamp = first.stat().st_mtime_ns
    again = cached_export("dncnn-s25", tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp
    sha = load_pretrained("dncnn-s25").pretrained["sha256"]
    assert first.name.startswith("dncnn-s25-") and first.suffix == ".onnx"
    assert sha not in first.name  # a digest of weights, torch and exporter, not the weights' alone
    assert onnx.load(first).graph.input[0].name == INPUT
