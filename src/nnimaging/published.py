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

The module also holds the two experiments behind chapters 5 and 7
(``python -m nnimaging.experiments published-dncnn`` and ``dncnn3``), which write
``results/published_dncnn.json`` and ``results/dncnn3.json``, and the chapter-7 demo of DnCNN-3
(:func:`dncnn3_demo`).

References
----------
K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual Learning of
Deep CNN for Image Denoising", IEEE Trans. Image Processing 26(7), 2017.
"""

from __future__ import annotations

import copy
import io
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import results
from .demo import Choice, Demo, Image, Panel, register

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
    "bicubic_rescale",
    "jpeg",
    "degrade",
    "protocol_check",
    "dncnn3_table",
    "dncnn3_demo",
    "DNCNN3_TASKS",
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
        The name :func:`nnimaging.models.load_pretrained` serves it under.
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
"""The names :func:`nnimaging.models.load_pretrained` dispatches to this module."""

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
    from .weightstore import sha256_file

    return sha256_file(path)


def _cache_dir() -> Path:
    from .data import cache_dir

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
    nnimaging.models.WeightsNotFoundError
        The file is in neither folder and cannot be downloaded.
    """
    from .weightstore import WeightsNotFoundError

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
    """One :func:`nnimaging.models.available`-style entry per published network, sorted by name.

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
    import torch

    from .models import DnCNN

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


# ----------------------------------------------------------------------------------------
# DnCNN-3's three tasks: bicubic super-resolution and JPEG deblocking inputs
# ----------------------------------------------------------------------------------------


def _to_uint8(image) -> np.ndarray:
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def bicubic_rescale(image, scale: int) -> np.ndarray:
    """The input of DnCNN-3's super-resolution task: downscale by ``scale`` and upscale back, bicubic.

    As the authors' test code does, the image is first cropped to a multiple of ``scale``
    (the returned image has that size), each resize rounds to 8 bits, and downscaling is
    antialiased. The authors use MATLAB's ``imresize``; this uses Pillow's bicubic filter
    (the same cubic kernel, a = -0.5, also antialiased) in floating point, whose borders are
    handled differently, so the input differs from the paper's in the last digits.

    Parameters
    ----------
    image : (H, W) float array in [0, 1]
    scale : int >= 2

    Returns
    -------
    (H', W') float32 array in [0, 1], ``H' = H - H % scale``: the bicubic-upscaled low-resolution image.
    """
    from PIL import Image as PILImage

    scale = int(scale)
    if scale < 2:
        raise ValueError(f"scale must be an integer >= 2, got {scale}")
    pixels = _to_uint8(image)
    h, w = (pixels.shape[0] // scale) * scale, (pixels.shape[1] // scale) * scale
    hr = PILImage.fromarray(pixels[:h, :w].astype(np.float32), mode="F")
    lr = hr.resize((w // scale, h // scale), PILImage.Resampling.BICUBIC)
    lr = PILImage.fromarray(_to_uint8(np.asarray(lr) / 255.0).astype(np.float32), mode="F")
    up = np.asarray(lr.resize((w, h), PILImage.Resampling.BICUBIC))
    return (_to_uint8(up / 255.0).astype(np.float32) / 255.0)


def jpeg(image, quality: int) -> np.ndarray:
    """The input of DnCNN-3's deblocking task: the 8-bit image saved as a grayscale JPEG and read back.

    Pillow's encoder (libjpeg-turbo, the IJG quality scale the authors' MATLAB ``imwrite`` uses too).

    Returns
    -------
    (H, W) float32 array in [0, 1].
    """
    from PIL import Image as PILImage

    quality = int(quality)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    buffer = io.BytesIO()
    PILImage.fromarray(_to_uint8(image), mode="L").save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with PILImage.open(buffer) as decoded:
        return np.asarray(decoded.convert("L"), dtype=np.float32) / 255.0


DNCNN3_TASKS = {
    "denoise": (15, 25, 50),
    "sr": (2, 3, 4),
    "jpeg": (10, 20, 30, 40),
}
"""DnCNN-3's tasks and the settings the book evaluates: noise sigma, upscaling factor, JPEG quality."""

_TASK_LABELS = {"denoise": "denoising σ={}", "sr": "super-resolution ×{}", "jpeg": "JPEG quality {}"}
_BASELINES = {"denoise": "noisy input", "sr": "bicubic upscaling", "jpeg": "JPEG image"}


def degrade(clean, task: str, level, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The degraded input of one DnCNN-3 task and the clean image it is compared with.

    Parameters
    ----------
    clean : (H, W) float array in [0, 1]
    task : {"denoise", "sr", "jpeg"}
    level : number
        Noise sigma (0..255 scale), upscaling factor, or JPEG quality.
    seed : int
        Noise seed (denoising only; :func:`nnimaging.degrade.add_gaussian_noise`).

    Returns
    -------
    degraded, reference : (H', W') float32 arrays
        ``reference`` is ``clean`` (cropped to a multiple of the factor for ``"sr"``).
    """
    from .degrade import add_gaussian_noise

    clean = np.asarray(clean, dtype=np.float32)
    if task == "denoise":
        return add_gaussian_noise(clean, float(level), seed), clean
    if task == "sr":
        out = bicubic_rescale(clean, int(level))
        return out, np.ascontiguousarray(clean[: out.shape[0], : out.shape[1]])
    if task == "jpeg":
        return jpeg(clean, int(level)), clean
    raise ValueError(f"task must be 'denoise', 'sr' or 'jpeg', got {task!r}")


def _task_psnr(estimate, reference, task: str, level) -> float:
    """PSNR of the book's protocol (8-bit, peak 255); for super-resolution without a border of ``level`` pixels.

    The authors' test code leaves out a border as wide as the factor for super-resolution (where
    the interpolation's boundary handling matters) and none for the other tasks.
    """
    from .evaluate import psnr_8bit

    if task == "sr":
        b = int(level)
        return psnr_8bit(estimate[b:-b, b:-b], reference[b:-b, b:-b])
    return psnr_8bit(estimate, reference)


# ----------------------------------------------------------------------------------------
# the experiments (python -m nnimaging.experiments published-dncnn / dncnn3)
# ----------------------------------------------------------------------------------------

PROTOCOL_RUNS = (
    ("zhang2017-dncnn-s25", "bsd68", 25.0),
    ("zhang2017-dncnn-b", "bsd68", 25.0),
    ("zhang2017-dncnn-s25", "set12", 25.0),
    ("zhang2017-dncnn-b", "set12", 25.0),
    ("zhang2017-dncnn-s15", "bsd68", 15.0),
    ("zhang2017-dncnn-s50", "bsd68", 50.0),
    ("zhang2017-dncnn-b", "bsd68", 15.0),
    ("zhang2017-dncnn-b", "bsd68", 50.0),
)
"""``(model, dataset, sigma)`` of :func:`protocol_check`: the paper's BSD68 table (one DnCNN-S per noise
level, and DnCNN-B), and Set12 at sigma 25; the two sigma-25 models first."""


_record = results.record
_results_dir = results.folder
_save = results.write


def protocol_check(
    runs=PROTOCOL_RUNS,
    seed: int = 0,
    device: str = "cpu",
    name: str = "published_dncnn",
    results_dir=None,
    update_shipped: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate the published weights with the book's protocol and store the PSNRs next to the paper's.

    Each run is ``nnimaging.evaluate.evaluate_denoiser`` on a whole test set; rows are written to
    ``NAME.json`` as they finish (in ``runs/results/`` or ``results_dir``; in the package's
    ``results/`` with ``update_shipped``), and rows of an earlier call (same seed, same file) are
    reused, so an interrupted call resumes.

    Returns
    -------
    dict
        The record: ``rows`` of ``{"model", "dataset", "sigma", "images", "mean_psnr",
        "mean_noisy_psnr", "published" (dB or None), "difference", "per_image", "seconds",
        "sha256"}``.
    """
    from . import data, results
    from .evaluate import evaluate_denoiser

    try:
        old = results.load(name, _results_dir(results_dir, update_shipped))
    except results.ResultsNotFoundError:
        old = {}
    rows = list(old.get("rows", [])) if old.get("seed") == seed else []
    record = _record(command, device, protocol="nnimaging.evaluate (noise in float64 re-seeded per image, not "
                     "clipped; output clipped and rounded to 8 bits; PSNR peak 255 averaged over images)",
                     seed=seed, source=f"github.com/{SOURCE_REPOSITORY} at {SOURCE_COMMIT}", paper=_PAPER, rows=rows)
    loaded: dict = {}
    for model_name, dataset, sigma in runs:
        w = _weights(model_name)
        sigma = float(sigma)
        if any(r["model"] == model_name and r["dataset"] == dataset and r["sigma"] == sigma
               and r["sha256"] == w.sha256 for r in rows):
            continue
        if model_name not in loaded:
            loaded[model_name] = load(model_name).to(device)
        images, names = data.load_images(dataset, return_names=True)
        started = time.perf_counter()
        res = evaluate_denoiser(loaded[model_name], images, sigma, seed, names, progress=progress)
        published = w.published.get(f"{dataset} sigma={sigma:g}")
        row = {
            "model": model_name, "dataset": dataset, "sigma": sigma, "images": len(images),
            "mean_psnr": res["mean_psnr"], "mean_noisy_psnr": res["mean_noisy_psnr"],
            "published": published,
            "difference": None if published is None else res["mean_psnr"] - published,
            "per_image": {r["name"]: round(r["psnr"], 4) for r in res["images"]},
            "seconds": round(time.perf_counter() - started, 1), "sha256": w.sha256,
        }
        rows[:] = [r for r in rows if not (r["model"] == model_name and r["dataset"] == dataset
                                           and r["sigma"] == sigma)] + [row]
        _save(name, record, results_dir, update_shipped)
        if progress:
            paper = "" if published is None else f" (paper {published:.2f})"
            print(f"{model_name:>20} {dataset:>6} sigma {sigma:4g}: {row['mean_psnr']:.2f} dB{paper}", file=sys.stderr)
    order = {run[:2] + (float(run[2]),): i for i, run in enumerate(runs)}
    rows.sort(key=lambda r: order.get((r["model"], r["dataset"], r["sigma"]), len(order)))
    _save(name, record, results_dir, update_shipped)
    return record


_DNCNN3_SETTINGS = {
    "denoise": "white Gaussian noise, not clipped (nnimaging.degrade.add_gaussian_noise)",
    "sr": "crop to a multiple of the factor; Pillow bicubic down, round to 8 bits, Pillow bicubic up, round "
          "(the paper: MATLAB imresize); PSNR without a border as wide as the factor",
    "jpeg": "Pillow JPEG, grayscale (the paper: MATLAB imwrite)",
}


def dncnn3_table(
    dataset: str = "set12",
    tasks=DNCNN3_TASKS,
    seed: int = 0,
    device: str = "cpu",
    name: str = "dncnn3",
    results_dir=None,
    update_shipped: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """DnCNN-3 on its three tasks against each task's plain baseline, mean PSNR over ``dataset``.

    The baseline is the degraded input itself: the noisy image, the bicubic upscaling, the
    decoded JPEG. PSNR as in :mod:`nnimaging.evaluate` (8-bit, peak 255); for super-resolution
    a border as wide as the factor is left out, as in the authors' test code. Rows are saved as
    they finish; rows of an earlier call on the same images with the same file are reused.

    Returns
    -------
    dict
        The record: ``rows`` of ``{"task", "level", "baseline_psnr", "dncnn3_psnr", "gain",
        "per_image"}``.
    """
    from . import data, results
    from .evaluate import denoise

    sha256 = WEIGHTS["zhang2017-dncnn-3"].sha256
    images, names = data.load_images(dataset, return_names=True)
    try:
        old = results.load(name, _results_dir(results_dir, update_shipped))
    except results.ResultsNotFoundError:
        old = {}
    same = old.get("seed") == seed and old.get("images") == names and old.get("sha256") == sha256 \
        and old.get("settings") == _DNCNN3_SETTINGS
    done = {(r["task"], r["level"]): r for r in old.get("rows", [])} if same else {}
    record = _record(command, device, dataset=dataset, images=names, seed=seed, sha256=sha256,
                     settings=_DNCNN3_SETTINGS, rows=[])
    model = None
    for task, levels in tasks.items():
        for level in levels:
            if (task, level) in done:  # an earlier call computed it on the same images with the same file
                record["rows"].append(done[(task, level)])
                continue
            model = load("zhang2017-dncnn-3").to(device) if model is None else model
            started = time.perf_counter()
            per_image = {}
            for image_name, clean in zip(names, images):
                degraded, reference = degrade(clean, task, level, seed)
                base = _task_psnr(degraded, reference, task, level)
                out = _task_psnr(denoise(model, degraded), reference, task, level)
                per_image[image_name] = [round(base, 4), round(out, 4)]
            base = float(np.mean([v[0] for v in per_image.values()]))
            out = float(np.mean([v[1] for v in per_image.values()]))
            record["rows"].append({"task": task, "level": level, "baseline": _BASELINES[task], "baseline_psnr": base,
                                   "dncnn3_psnr": out, "gain": out - base, "per_image": per_image,
                                   "seconds": round(time.perf_counter() - started, 1)})
            _save(name, record, results_dir, update_shipped)
            if progress:
                print(f"{_TASK_LABELS[task].format(level):>24}: {_BASELINES[task]} {base:.2f} dB, DnCNN-3 {out:.2f} dB",
                      file=sys.stderr)
    _save(name, record, results_dir, update_shipped)
    return record


# ----------------------------------------------------------------------------------------
# tables for the chapters
# ----------------------------------------------------------------------------------------


def comparison_table(denoising_record: dict, published_record: dict,
                     columns=(("set12", 25), ("bsd68", 15), ("bsd68", 25), ("bsd68", 50))):
    """Chapter 5's table: baselines, the book's models, the published weights recomputed, the paper's numbers.

    Parameters
    ----------
    denoising_record : dict
        ``results.load("denoising")`` (noisy input, Gaussian filter, the book's models).
    published_record : dict
        ``results.load("published_dncnn")`` (the authors' weights under the book's protocol).
    columns : sequence of (dataset, sigma)
        The columns, in order.

    Returns
    -------
    nnimaging.denoising.Table
        Mean PSNR in dB, one column per dataset and noise level.
    """
    from .denoising import METHOD_LABELS, PUBLISHED, PUBLISHED_SOURCE, SHIPPED_LABELS, Table

    names = {"set12": "Set12", "bsd68": "BSD68"}
    columns = [(d, float(s)) for d, s in columns]
    headers = [f"{names.get(d, d)} σ={s:g}" for d, s in columns]
    book = {(r["method"], r["dataset"], float(r["sigma"])): r["mean_psnr"] for r in denoising_record["rows"]}
    ours = {(r["model"], r["dataset"], float(r["sigma"])): r["mean_psnr"] for r in published_record["rows"]}

    def fmt(value):
        return "–" if value is None else f"{float(value):.2f}"

    def specific(d, s):  # the DnCNN-S trained at this sigma
        return ours.get((f"zhang2017-dncnn-s{s:g}", d, s))

    rows = [
        (METHOD_LABELS["noisy"], [fmt(book.get(("noisy", d, s))) for d, s in columns]),
        (METHOD_LABELS["gaussian"], [fmt(book.get(("gaussian", d, s))) for d, s in columns]),
        ("BM3D (published)", [fmt(PUBLISHED.get(("bm3d", d, s))) for d, s in columns]),
    ]
    for model in ("dncnn-s25", "dncnn-b", "unet-denoise"):
        rows.append((SHIPPED_LABELS.get(model, model), [fmt(book.get((model, d, s))) for d, s in columns]))
    rows += [
        ("DnCNN-S, authors' weights, measured here", [fmt(specific(d, s)) for d, s in columns]),
        ("DnCNN-B, authors' weights, measured here", [fmt(ours.get(("zhang2017-dncnn-b", d, s))) for d, s in columns]),
        ("DnCNN-S (published)", [fmt(PUBLISHED.get(("dncnn-s", d, s))) for d, s in columns]),
        ("DnCNN-B (published)", [fmt(PUBLISHED.get(("dncnn-b", d, s))) for d, s in columns]),
    ]
    caption = (f"Mean PSNR in dB. Published: {PUBLISHED_SOURCE}. Measured with this book's protocol on a 2-core CPU: "
               "the book's models (results/denoising.json) and the authors' own weights, one DnCNN-S per noise level "
               "(results/published_dncnn.json).")
    return Table(headers, rows, caption, row_header="method")


def dncnn3_results_table(record: dict):
    """Chapter 7's table of ``results.load("dncnn3")``: each task's baseline and DnCNN-3, mean PSNR in dB."""
    from .denoising import Table

    rows = [(_TASK_LABELS[r["task"]].format(r["level"]),
             [r["baseline"], f"{r['baseline_psnr']:.2f}", f"{r['dncnn3_psnr']:.2f}", f"{r['gain']:+.2f}"])
            for r in record["rows"]]
    caption = (f"Mean PSNR in dB on {record['dataset']} ({len(record['images'])} images), one DnCNN-3 network for "
               f"every row; measured on {record['hardware']} (results/dncnn3.json).")
    return Table(["baseline", "baseline (dB)", "DnCNN-3 (dB)", "gain (dB)"], rows, caption, row_header="task")


# ----------------------------------------------------------------------------------------
# the chapter-7 demo
# ----------------------------------------------------------------------------------------

DEMO_CROP = {"image": "set12/05", "top": 72, "left": 60, "size": 120}
"""The DnCNN-3 demo's crop: 120 x 120 pixels of Set12's monarch butterfly (sharp edges and thin lines)."""

_MARGIN = 24
"""Pixels around the crop the network sees: more than the 20-pixel reach of a 20-layer 3x3 stack, so
the crop of its output equals the crop of its output on the whole image."""

_DEMO_SETTINGS = (("denoise", 15), ("denoise", 25), ("denoise", 50), ("sr", 2), ("sr", 3), ("sr", 4),
                  ("jpeg", 10), ("jpeg", 20), ("jpeg", 40))


def _setting_label(task: str, level) -> str:
    return _TASK_LABELS[task].format(level)


@register
def dncnn3_demo(image: str = DEMO_CROP["image"], top: int = DEMO_CROP["top"], left: int = DEMO_CROP["left"],
                size: int = DEMO_CROP["size"], seed: int = 0) -> Demo:
    """One network, three tasks: the degraded crop, DnCNN-3's output and the clean crop, for a choice of task.

    Every setting (three noise levels, three upscaling factors, three JPEG qualities) is computed
    in Python when the cell runs and embedded in the page (no JavaScript twin). The whole image is
    degraded, so JPEG blocks and the bicubic filter see the real image; the network runs on the
    crop and a margin of 24 pixels, which gives the same crop of the output as the whole image
    would (its receptive field reaches 20 pixels). PSNRs are those of the crop.
    """
    from . import data
    from .evaluate import denoise

    dataset, _, stem = image.partition("/")
    images, names = data.load_images(dataset, return_names=True)
    if stem not in names:
        raise ValueError(f"no image {stem!r} in {dataset} (have {', '.join(names)})")
    full = images[names.index(stem)]
    fits = (full.shape[0] // 12) * 12, (full.shape[1] // 12) * 12  # inside every super-resolution crop
    if size < 8 or top < 0 or left < 0 or top + size > fits[0] or left + size > fits[1]:
        raise ValueError(f"the crop ({size} pixels at ({top}, {left})) must fit in the first {fits[0]} x {fits[1]} "
                         f"pixels of {image}")
    model = load("zhang2017-dncnn-3")
    labels = tuple(_setting_label(t, lv) for t, lv in _DEMO_SETTINGS)
    settings = dict(zip(labels, _DEMO_SETTINGS))
    view = np.s_[top:top + size, left:left + size]
    r0, c0 = max(top - _MARGIN, 0), max(left - _MARGIN, 0)
    inner = np.s_[top - r0:top - r0 + size, left - c0:left - c0 + size]

    def compute(setting):
        from .evaluate import psnr_8bit

        task, level = settings[setting]
        degraded, reference = degrade(full, task, level, seed)
        restored = denoise(model, degraded[r0:top + size + _MARGIN, c0:left + size + _MARGIN])[inner]
        return {
            "clean": np.ascontiguousarray(reference[view]),
            "input": np.clip(degraded[view], 0.0, 1.0),
            "output": np.clip(restored, 0.0, 1.0),
            "baseline": _BASELINES[task],
            "psnr_in": psnr_8bit(degraded[view], reference[view]),
            "psnr_out": psnr_8bit(restored, reference[view]),
        }

    return Demo(
        "DnCNN-3: one network for denoising, super-resolution and JPEG deblocking",
        [Choice("setting", labels, labels[1], label="task")],
        compute,
        [Panel([Image("input", 0.0, 1.0)], title="{baseline}: {psnr_in:.2f} dB", axes=False),
         Panel([Image("output", 0.0, 1.0)], title="DnCNN-3: {psnr_out:.2f} dB", axes=False),
         Panel([Image("clean", 0.0, 1.0)], title="clean", axes=False)],
        alt=(f"Three {size} by {size} pixel crops of test image {image} for the chosen task: the degraded input (a "
             "noisy image, a bicubic upscaling of a downscaled image, or a decoded JPEG) with its PSNR, the output "
             "of the authors' DnCNN-3 network with its PSNR, and the clean crop."),
        ncols=3, height=250,
    )
