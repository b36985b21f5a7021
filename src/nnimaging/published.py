"""The DnCNN authors' own trained weights, read safely into the book's :class:`~nnimaging.models.DnCNN`.

Zhang et al. (2017) publish the networks of their paper as MatConvNet files (MATLAB v7.3, which
is HDF5) in their repository ``cszn/DnCNN``. This module reads them with ``h5py`` as plain
arrays (nothing in a file is ever executed or unpickled), checks that the layers are the
expected chain of 3x3 convolutions and ReLUs, and copies the arrays into a
``DnCNN(depth, width=64, bias=True, batch_norm=False)``: the authors folded batch
normalization into the convolutions, so each of their layers is one convolution with a bias.
The network predicts the noise, as the book's residual models do, so the loaded model has the
same call as ``load_pretrained("dncnn-s25")``: ``(N, 1, H, W)`` float32 in [0, 1] in, the
denoised images out.

========================= ================== ===== =============================================
name                      file               depth what
========================= ================== ===== =============================================
``zhang2017-dncnn-s15``   sigma=15.mat       17    DnCNN-S, trained at sigma 15
``zhang2017-dncnn-s25``   sigma=25.mat       17    DnCNN-S, trained at sigma 25
``zhang2017-dncnn-s50``   sigma=50.mat       17    DnCNN-S, trained at sigma 50
``zhang2017-dncnn-b``     GD_Gray_Blind.mat  20    DnCNN-B, blind over sigma in [0, 55]
``zhang2017-dncnn-3``     DnCNN3.mat         20    DnCNN-3: denoising, bicubic super-resolution
                                                   (x2, x3, x4) and JPEG deblocking, one network
========================= ================== ===== =============================================

Each file is looked up, like the datasets (:mod:`nnimaging.data`), in

1. the folder named by the environment variable ``NNIMAGING_WEIGHTS``, laid out as
   ``dncnn-zhang2017/sigma=25.mat`` (CI points it at the shared copy beside the checkout);
2. the user cache (``NNIMAGING_CACHE`` or ``pooch.os_cache("nnimaging")``), same layout;
3. a download from the authors' repository at the fixed commit :data:`SOURCE_COMMIT`.

Whatever its origin, a file is used only if its SHA-256 matches :data:`WEIGHTS`; a download is
checked before it is moved into the cache, so a corrupt or truncated download never lands there.
The files are never committed to the book: the repository states no licence.

Running these networks under the book's protocol (the experiments behind chapters 5 and 8, the
inputs of DnCNN-3's other tasks, the tables and the DnCNN-3 demo) is :mod:`nnimaging.published_eval`.

References
----------
K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual Learning of
Deep CNN for Image Denoising", IEEE Trans. Image Processing 26(7), 2017.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import _checks
from ._checks import WeightsNotFoundError
from .data import cache_dir
from .models import DnCNN


__all__ = [
    "SOURCE_REPOSITORY",
    "SOURCE_COMMIT",
    "FOLDER",
    "PublishedWeights",
    "WEIGHTS",
    "NAMES",
    "PublishedWeightsError",
    "source_url",
    "fetch",
    "read_matconvnet",
    "load",
    "entries",
]

SOURCE_REPOSITORY = "cszn/DnCNN"
"""The authors' repository on GitHub."""

SOURCE_COMMIT = "e93b27812d3ff523a3a79d19e5e50d233d7a8d0a"
"""The commit of :data:`SOURCE_REPOSITORY` whose files :data:`WEIGHTS` lists (its SHA-256 sums)."""

FOLDER = "dncnn-zhang2017"
"""Sub-folder of ``NNIMAGING_WEIGHTS`` (and of the cache) that holds the files."""

_RAW = f"https://raw.githubusercontent.com/{SOURCE_REPOSITORY}/{SOURCE_COMMIT}/"
_PAPER = "Zhang et al. (2017), Tables II, III"


@dataclass(frozen=True)
class PublishedWeights:
    """One published network: where its file is, what it should hold, what the paper reports.

    Attributes
    ----------
    name : str
        The name :func:`nnimaging.weightstore.load_pretrained` serves it under.
    file : str
        File name inside :data:`FOLDER`.
    repo_path : str
        Path of the file in the authors' repository.
    sha256 : str
        Hex digest of the file.
    depth : int
        Number of convolutions (17 or 20).
    description : str
        What it is.
    noise : dict
        ``{"sigma": s}`` for a network trained at one noise level, ``{"sigma_range": [lo, hi]}``
        for a blind one (as the book's manifests record it).
    published : dict
        ``{"bsd68 sigma=25": dB, ...}``: the paper's mean PSNRs for this network.
    """

    name: str
    file: str
    repo_path: str
    sha256: str
    depth: int
    description: str
    noise: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Raw download address at :data:`SOURCE_COMMIT` (``=`` written as ``%3D``)."""
        return _RAW + self.repo_path.replace("=", "%3D")

    @property
    def relpath(self) -> str:
        """Path inside ``NNIMAGING_WEIGHTS`` or the cache: ``dncnn-zhang2017/FILE``."""
        return f"{FOLDER}/{self.file}"


WEIGHTS: dict[str, PublishedWeights] = {
    w.name: w
    for w in (
        PublishedWeights(
            "zhang2017-dncnn-s15", "sigma=15.mat", "model/specifics/sigma=15.mat",
            "657d5115fa05d371dbf0df1f0a931eff274dae29d08a9cc0824a28caf2460e21", 17,
            "DnCNN-S of Zhang et al. (2017), trained at sigma 15", {"sigma": 15.0},
            {"bsd68 sigma=15": 31.73},
        ),
        PublishedWeights(
            "zhang2017-dncnn-s25", "sigma=25.mat", "model/specifics/sigma=25.mat",
            "5a5404c9e3ef14e353760e14b885439408a654618e14f13b2e97b99b9835020b", 17,
            "DnCNN-S of Zhang et al. (2017), trained at sigma 25", {"sigma": 25.0},
            {"bsd68 sigma=25": 29.23, "set12 sigma=25": 30.44},
        ),
        PublishedWeights(
            "zhang2017-dncnn-s50", "sigma=50.mat", "model/specifics/sigma=50.mat",
            "517dc0b55a8da2c129704ed7921b8557aac40cf3aae9f700dc41a9e25cad0983", 17,
            "DnCNN-S of Zhang et al. (2017), trained at sigma 50", {"sigma": 50.0},
            {"bsd68 sigma=50": 26.23},
        ),
        PublishedWeights(
            "zhang2017-dncnn-b", "GD_Gray_Blind.mat", "model/GD_Gray_Blind.mat",
            "37f76da0b71dd2b2789ce91848fe2f184ab486203c9af9ac1b98199b60ea02b0", 20,
            "DnCNN-B of Zhang et al. (2017), blind over sigma in [0, 55]", {"sigma_range": [0.0, 55.0]},
            {"bsd68 sigma=15": 31.61, "bsd68 sigma=25": 29.16, "bsd68 sigma=50": 26.23},
        ),
        PublishedWeights(
            "zhang2017-dncnn-3", "DnCNN3.mat", "model/DnCNN3.mat",
            "3962377d522b6728417e364bf7a589cf34ddfb592af0bd9769e53f8123d17677", 20,
            "DnCNN-3 of Zhang et al. (2017): one network for blind denoising (sigma in [0, 55]), "
            "super-resolution of bicubic-upscaled images (x2, x3, x4) and JPEG deblocking (quality 5-99)",
            {"sigma_range": [0.0, 55.0]},
        ),
    )
}
"""The published networks by name, with the SHA-256 of each file at :data:`SOURCE_COMMIT`."""

NAMES = tuple(WEIGHTS)
"""The names :func:`nnimaging.weightstore.load_pretrained` dispatches to this module."""

WIDTH = 64
"""Feature maps of every published network."""


class PublishedWeightsError(ValueError):
    """A weights file is corrupt, truncated, not the published one, or not the expected chain of layers."""


def _weights(name: str) -> PublishedWeights:
    if name not in WEIGHTS:
        raise KeyError(f"no published weights named {name!r}; known: {', '.join(NAMES)}")
    return WEIGHTS[name]


def source_url(name: str) -> str:
    """Download address of the file of ``name`` in the authors' repository at :data:`SOURCE_COMMIT`."""
    return _weights(name).url


def _sha256(path: Path) -> str:
    return _checks.file_digest(path, "sha256")


def _cache_dir() -> Path:
    return cache_dir()


def _describe(w: PublishedWeights) -> str:
    return f"{w.relpath} ({w.description}; source {w.url})"


def fetch(name: str) -> Path:
    """Local path of the verified file of ``name``: ``NNIMAGING_WEIGHTS``, then the cache, then a download.

    Raises
    ------
    PublishedWeightsError
        The file in ``NNIMAGING_WEIGHTS`` or the download does not have the registered SHA-256
        (a rejected download is not kept in the cache).
    nnimaging._checks.WeightsNotFoundError
        The file is in neither folder and cannot be downloaded.
    """
    w = _weights(name)
    local = os.environ.get("NNIMAGING_WEIGHTS")
    if local and (Path(local) / w.relpath).is_file():
        path = Path(local) / w.relpath
        digest = _sha256(path)
        if digest != w.sha256:
            raise PublishedWeightsError(
                f"{path} is not the published file {_describe(w)}: expected SHA-256 {w.sha256}, got {digest}. "
                "Replace it with the original or unset NNIMAGING_WEIGHTS."
            )
        return path
    import pooch
    import requests  # a dependency of pooch

    target = _cache_dir() / w.relpath
    try:
        return Path(pooch.retrieve(w.url, known_hash=f"sha256:{w.sha256}", fname=target.name, path=target.parent,
                                   downloader=pooch.HTTPDownloader(progressbar=False, timeout=60)))
    except requests.exceptions.RequestException as exc:
        where = f"NNIMAGING_WEIGHTS={local} has no {w.relpath}" if local else "NNIMAGING_WEIGHTS is not set"
        raise WeightsNotFoundError(
            f"cannot get the weights {name!r}: {where}, the cache {target.parent} has no {w.file}, and downloading "
            f"{w.url} failed ({type(exc).__name__}: {exc}). To work offline, set NNIMAGING_WEIGHTS to a folder "
            f"holding {w.relpath} (for example the book's shared/weights folder)."
        ) from exc
    except ValueError as exc:  # pooch's hash check of the download
        raise PublishedWeightsError(f"the download of {_describe(w)} was rejected and not kept in the cache: {exc}") from exc


# ----------------------------------------------------------------------------------------
# reading a MatConvNet file (MATLAB v7.3 = HDF5) without executing anything
# ----------------------------------------------------------------------------------------

_MAX_WIDTH = 1024  # refuse absurd shapes before reading any array


def _text(group, key: str, where: str) -> str:
    import h5py

    ds = group.get(key)
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "ui" or ds.size > 256:
        raise PublishedWeightsError(f"{where}: field {key!r} is not a MATLAB character array")
    return "".join(chr(int(c)) for c in np.asarray(ds[()]).ravel())


def _number(group, key: str, where: str) -> np.ndarray:
    import h5py

    ds = group.get(key)
    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu" or ds.size > 16:
        raise PublishedWeightsError(f"{where}: field {key!r} is not a small numeric array")
    return np.asarray(ds[()], dtype=np.float64).ravel()


def _array(ds, where: str, what: str) -> np.ndarray:
    import h5py

    if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f" or ds.ndim > 4:
        kind = type(ds).__name__ if not isinstance(ds, h5py.Dataset) else f"dtype {ds.dtype}, {ds.ndim} dimensions"
        raise PublishedWeightsError(f"{where}: its {what} is not a numeric array of floats ({kind})")
    if any(n > _MAX_WIDTH for n in ds.shape):
        raise PublishedWeightsError(f"{where}: its {what} has an implausible shape {ds.shape}")
    return np.asarray(ds[()], dtype=np.float32)


def read_matconvnet(path, source: str | None = None) -> list[dict]:
    """The layers of a MatConvNet ``simplenn`` network stored as MATLAB v7.3 (HDF5), as plain arrays.

    Only numeric and character arrays are read (``h5py``); MATLAB objects, function handles and
    anything else that could run code are never touched. MATLAB's dimension order is reversed in
    HDF5: a filter bank ``(kh, kw, in, out)`` reads as ``(out, in, kw, kh)``, with a trailing
    ``out = 1`` squeezed away; it is returned in PyTorch's order ``(out, in, kh, kw)``.

    Parameters
    ----------
    path : path
        The ``.mat`` file.
    source : str, optional
        Where the file comes from, for error messages.

    Returns
    -------
    list of dict
        One per layer, in order: ``{"type": "conv", "name", "weight" (out, in, kh, kw) float32,
        "bias" (out,) float32, "stride", "pad"}`` or ``{"type": "relu", "name", "leak"}``.

    Raises
    ------
    PublishedWeightsError
        The file cannot be read as HDF5 (corrupt, truncated, not a v7.3 MAT-file), has no
        ``net.layers``, or holds a layer that is neither a convolution nor a ReLU; the message
        names the file (and its source) and the layer.
    """
    import h5py

    path = Path(path)
    label = f"{path}" + (f" (source {source})" if source else "")
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise PublishedWeightsError(
            f"cannot read {label} as a MATLAB v7.3 (HDF5) file: {err}. The file is corrupt, truncated or not a "
            "MatConvNet network; delete it and fetch it again."
        ) from None
    layers = []
    with handle as f:
        try:
            cells = f["net"]["layers"]
        except (KeyError, TypeError):
            raise PublishedWeightsError(f"{label} holds no MatConvNet network (no 'net.layers')") from None
        if not isinstance(cells, h5py.Dataset) or cells.dtype.kind != "O" or cells.ndim != 2 or 1 not in cells.shape:
            raise PublishedWeightsError(f"{label}: 'net.layers' is not a MATLAB cell array of layers")
        refs = np.asarray(cells[()]).ravel()
        for index, ref in enumerate(refs, start=1):
            where = f"{label}, layer {index}"
            try:
                layer = f[ref]
            except (ValueError, KeyError, TypeError):
                raise PublishedWeightsError(f"{where}: a broken reference in 'net.layers'") from None
            if not isinstance(layer, h5py.Group):
                raise PublishedWeightsError(f"{where}: expected a MATLAB struct, got {type(layer).__name__}")
            kind = _text(layer, "type", where)
            name = _text(layer, "name", where) if "name" in layer else f"layer{index}"
            where = f"{label}, layer {index} ({name!r}, type {kind!r})"
            if kind == "relu":
                leak = _number(layer, "leak", where) if "leak" in layer else np.zeros(1)
                layers.append({"type": "relu", "name": name, "leak": float(leak[0]) if leak.size else 0.0})
            elif kind == "conv":
                wref = layer.get("weights")
                if not isinstance(wref, h5py.Dataset) or wref.dtype.kind != "O" or wref.size != 2:
                    raise PublishedWeightsError(f"{where}: expected 'weights' = {{filters, biases}}")
                filt_ref, bias_ref = np.asarray(wref[()]).ravel()
                try:
                    filt_ds, bias_ds = f[filt_ref], f[bias_ref]
                except (ValueError, KeyError, TypeError):
                    raise PublishedWeightsError(f"{where}: a broken reference in its weights") from None
                filters = _array(filt_ds, where, "filter bank")
                bias = _array(bias_ds, where, "bias").ravel()
                if filters.ndim == 3:  # MATLAB squeezes a trailing out = 1: (kh, kw, in) -> (in, kw, kh)
                    filters = filters[None]
                if filters.ndim != 4:
                    raise PublishedWeightsError(f"{where}: filter bank of shape {filters.shape}, expected 4 dimensions")
                layers.append({
                    "type": "conv",
                    "name": name,
                    "weight": np.ascontiguousarray(filters.transpose(0, 1, 3, 2)),  # (out, in, kw, kh) -> (out, in, kh, kw)
                    "bias": bias,
                    "stride": _number(layer, "stride", where) if "stride" in layer else np.ones(1),
                    "pad": _number(layer, "pad", where) if "pad" in layer else np.zeros(1),
                })
            else:
                raise PublishedWeightsError(
                    f"{where}: not part of the expected chain of convolutions and ReLUs (batch normalization should "
                    "already be folded into the convolutions)"
                )
    if not layers:
        raise PublishedWeightsError(f"{label}: 'net.layers' is empty")
    return layers


def _check_chain(layers: list[dict], depth: int, label: str) -> None:
    """Raise unless ``layers`` is conv, relu, conv, ..., relu, conv: ``depth`` 3x3 convolutions, 1 -> 64 -> ... -> 1."""
    expected = 2 * depth - 1
    if len(layers) != expected:
        convs = sum(layer["type"] == "conv" for layer in layers)
        raise PublishedWeightsError(
            f"{label}: {len(layers)} layers ({convs} convolutions), expected the chain of {depth} convolutions "
            f"with a ReLU between each two ({expected} layers)"
        )
    for i, layer in enumerate(layers):
        where = f"{label}, layer {i + 1} ({layer['name']!r})"
        want = "conv" if i % 2 == 0 else "relu"
        if layer["type"] != want:
            raise PublishedWeightsError(f"{where}: expected a {want} layer here, got {layer['type']}")
        if want == "relu":
            if layer["leak"] != 0:
                raise PublishedWeightsError(f"{where}: a leaky ReLU (leak {layer['leak']:g}), expected a plain ReLU")
            continue
        cin = 1 if i == 0 else WIDTH
        cout = 1 if i == len(layers) - 1 else WIDTH
        if layer["weight"].shape != (cout, cin, 3, 3):
            raise PublishedWeightsError(
                f"{where}: filter bank of shape {layer['weight'].shape} (out, in, kh, kw), expected {(cout, cin, 3, 3)}"
            )
        if layer["bias"].shape != (cout,):
            raise PublishedWeightsError(f"{where}: {layer['bias'].size} biases, expected {cout}")
        if np.any(layer["stride"] != 1) or np.any(layer["pad"] != 1):
            raise PublishedWeightsError(
                f"{where}: stride {layer['stride'].tolist()} and padding {layer['pad'].tolist()}, expected 1 and 1"
            )
        if not (np.isfinite(layer["weight"]).all() and np.isfinite(layer["bias"]).all()):
            raise PublishedWeightsError(f"{where}: weights that are not finite numbers")


def _entry(w: PublishedWeights) -> dict:
    # DnCNN(...).config["kwargs"] of the loaded model (written out: building one would draw random weights)
    kwargs = {"depth": w.depth, "width": WIDTH, "bias": True, "batch_norm": False, "channels": 1, "residual": True}
    return {
        "name": w.name,
        "file": w.relpath,
        "architecture": "dncnn",
        "kwargs": kwargs,
        "parameters": 9 * WIDTH + WIDTH + (w.depth - 2) * (9 * WIDTH * WIDTH + WIDTH) + 9 * WIDTH + 1,
        "source": w.url,
        "description": w.description,
        "published": {"source": _PAPER, **w.published} if w.published else {},
        "training": {"by": "Zhang et al. (2017), MatConvNet on a GPU; batch normalization folded into the convolutions",
                     "dataset": "train400" if w.name != "zhang2017-dncnn-3" else "see Zhang et al. (2017), Section IV-A",
                     "noise": copy.deepcopy(w.noise)},
        "sha256": w.sha256,
    }


def entries() -> list[dict]:
    """One :func:`nnimaging.weightstore.available`-style entry per published network, sorted by name.

    Each has the keys of the book's manifest entries (``name``, ``file``, ``architecture``,
    ``kwargs``, ``parameters``, ``training``, ``sha256``) and also ``source`` (the download
    address), ``description`` and ``published`` (the paper's mean PSNRs, ``{"bsd68 sigma=25":
    29.23, ..., "source": ...}``).
    """
    return sorted((_entry(w) for w in WEIGHTS.values()), key=lambda e: e["name"])


def load(name: str, path=None):
    """The published network ``name`` as the book's DnCNN, in eval mode on the CPU.

    Parameters
    ----------
    name : str
        One of :data:`NAMES`.
    path : path, optional
        Read this file instead of looking the name up (:func:`fetch`); it is checked the same way,
        except for the SHA-256.

    Returns
    -------
    nnimaging.models.DnCNN
        ``DnCNN(depth, 64, bias=True, batch_norm=False)`` (a residual model); its entry (as listed
        by :func:`entries`) is in ``model.pretrained``.

    Raises
    ------
    PublishedWeightsError
        The file is corrupt, the wrong file, or not the expected chain of layers (the message
        names the file, its source and the layer).
    """
    w = _weights(name)
    file = Path(path) if path is not None else fetch(name)
    layers = read_matconvnet(file, w.url)
    _check_chain(layers, w.depth, f"{file} (source {w.url})")
    model = DnCNN(depth=w.depth, width=WIDTH, bias=True, batch_norm=False, residual=True)
    state = {}
    for i, layer in enumerate(layers):
        if layer["type"] == "conv":
            state[f"layers.{i}.weight"] = torch.from_numpy(layer["weight"])
            state[f"layers.{i}.bias"] = torch.from_numpy(layer["bias"])
    model.load_state_dict(state, strict=True)
    model.eval()
    model.pretrained = _entry(w)
    return model
