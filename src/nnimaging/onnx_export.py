"""The book's trained denoisers as ONNX files, for ONNX Runtime (in Python or in a browser).

:func:`export` writes one shipped model (``unet-denoise``, ``dncnn-s25``, ... from
:func:`nnimaging.weightstore.load_pretrained`, so only the book's own weights) as an ONNX graph with
one input ``noisy`` and one output ``denoised``, both ``(N, 1, H, W)`` float32 with **any** batch
size, height and width (dynamic axes). The graph computes what the model's ``forward`` computes:

* DnCNN is a stack of zero-padded convolutions, so it exports as it is;
* the U-Net pads its input by reflection to a multiple of ``2**depth`` and crops the output back.
  Its ``forward`` decides *in Python* whether to pad, which a traced graph would freeze at the
  example's size; the exported graph always pads, by ``(-H) mod 2**depth`` rows and
  ``(-W) mod 2**depth`` columns computed from the input's shape (zero when it is already a
  multiple). That equals ``forward`` for every image at least ``2**depth`` pixels a side
  (smaller ones, which ``forward`` pads by replication, are refused: :func:`min_size`).

:func:`cached_export` keeps the exported bytes in a cache keyed by the weights' SHA-256 (from the
manifest), the PyTorch version and this module's source, so that the book build exports each model
once, and again when its weights are replaced. ``tests/test_onnx.py`` checks that ONNX Runtime
gives PyTorch's output to within 1e-4 on Set12 images of odd sizes.

The exporter is PyTorch's TorchScript-based one (``dynamo=False``), which needs only the ``onnx``
package; the newer ``torch.export``-based one also needs ``onnxscript``.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import _checks
from .models import Denoiser, UNet
from .weightstore import load_pretrained

__all__ = ["OPSET", "OnnxDenoiser", "export", "export_bytes", "cached_export",
           "min_size", "cache_key"]

OPSET = 17
"""ONNX opset of the exported graphs (Pad with ``mode="reflect"``, supported by ONNX Runtime Web)."""

INPUT, OUTPUT = "noisy", "denoised"


def min_size(model: Denoiser) -> int:
    """Smallest height and width the exported graph accepts: ``2**depth`` for a U-Net, else 1."""
    return 2 ** model.depth if isinstance(model, UNet) else 1


class OnnxDenoiser(nn.Module):
    """``model.forward`` written so that a trace holds for every input size (see the module doc)."""

    def __init__(self, model: Denoiser):
        super().__init__()
        if not isinstance(model, Denoiser):
            raise TypeError(f"expected a nnimaging.models.Denoiser, got {type(model).__name__}")
        self.model = model
        self.eval()  # torch.onnx.export restores the wrapper's mode, and with it the model's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model
        if not isinstance(model, UNet):
            return model(x)
        h, w = x.shape[-2], x.shape[-1]
        m = 2 ** model.depth
        # always pad (by zero rows when H is a multiple of m): the amounts are traced from the shape
        x_padded = F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m), mode="reflect")
        out = model.body_forward(x_padded)[..., :h, :w]  # no padding inside: a multiple of m
        return x - out if model.residual else out


def _model(model_or_name) -> Denoiser:
    return load_pretrained(model_or_name) if isinstance(model_or_name, str) else model_or_name


def export_bytes(model_or_name, opset: int = OPSET) -> bytes:
    """The ONNX graph of a shipped model (by name) or of a :class:`~nnimaging.models.Denoiser`."""
    model = _model(model_or_name)
    example = torch.rand(1, model.channels, 37, 45, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the tracer's notes on Python values; the trace is checked by tests
        warnings.simplefilter("ignore")
        torch.onnx.export(
            OnnxDenoiser(model), (example,), buffer, dynamo=False, opset_version=OPSET if opset is None else opset,
            input_names=[INPUT], output_names=[OUTPUT], do_constant_folding=True,
            dynamic_axes={name: {0: "batch", 2: "height", 3: "width"} for name in (INPUT, OUTPUT)},
        )
    return buffer.getvalue()


def export(model_or_name, path, opset: int = OPSET) -> Path:
    """Write :func:`export_bytes` to ``path`` (atomically) and return the path."""
    path = Path(path)
    _checks.atomic_write_bytes(path, export_bytes(model_or_name, opset))
    return path


def cache_key(name: str) -> str:
    """What an exported file depends on: the weights' SHA-256, PyTorch's version, this module."""
    weights = load_pretrained(name).pretrained["sha256"]
    digest = hashlib.sha256()
    for part in (name, weights, torch.__version__, str(OPSET), Path(__file__).read_bytes()):
        digest.update(part if isinstance(part, bytes) else part.encode())
    return digest.hexdigest()[:20]


def cached_export(name: str, cache_dir) -> Path:
    """Path of the ONNX file of the shipped model ``name`` in ``cache_dir``, exported if missing.

    The file is named after :func:`cache_key`, so new weights (or a new PyTorch) give a new file.
    """
    path = Path(cache_dir) / f"{name}-{cache_key(name)}.onnx"
    if not path.is_file():
        export(name, path)
    return path

