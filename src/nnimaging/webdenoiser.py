"""The browser denoiser: the book's trained networks run in the reader's browser, no server.

A chapter shows the panel with one directive (registered by :mod:`nnimaging.sphinxext`)::

    ```{nnimaging-denoiser}
    ```

or with the HTML of :func:`panel_html` (options: ``:models:``, ``:sigma:``, ``:seed:``). The reader
picks an image (Set12's ``01.png`` by default, or their own file), a noise level and a model; the
page adds seeded Gaussian noise, runs the network with ONNX Runtime Web in a Web Worker and shows
the noisy, denoised and removed-noise images with their PSNRs (the book's protocol:
:mod:`nnimaging.evaluate`) and the network's time. The page's code is ``_static/denoiser/``.

What the page needs is made at build time by :func:`install` into the site's
``_static/denoiser/``, from files that are never committed:

* ``ort/``: ONNX Runtime Web's plain WebAssembly backend (``ort.wasm.min.js``, its loader
  ``ort-wasm-simd-threaded.mjs`` and ``ort-wasm-simd-threaded.wasm``) and its licence, taken from
  the npm registry's tarball of ``onnxruntime-web`` :data:`ORT_WEB_VERSION`, which is checked
  against :data:`ORT_WEB_SHA512` and kept in the cache (:func:`nnimaging.data.cache_dir`), so a
  rebuild downloads nothing;
* ``models/NAME.onnx``: the shipped weights exported by :mod:`nnimaging.onnx_export` (cached by
  the weights' SHA-256: new weights give a new export);
* ``images/set12-01.png``: the default test image, copied from the verified dataset;
* ``assets.json``: what the page reads (files, sizes, ONNX Runtime's version).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from . import _checks
from ._checks import file_digest
from .data import cache_dir, fetch
from .onnx_export import cached_export, min_size
from .weightstore import available, load_pretrained

__all__ = ["WEB_MODELS", "ORT_WEB_VERSION", "ORT_WEB_URL", "ORT_WEB_SHA512", "ORT_WEB_FILES", "ASSET_DIR",
           "DEFAULT_IMAGE", "MARKER", "AssetError", "ort_web_tarball", "install", "panel_html",
           "model_info"]

WEB_MODELS = ("unet-denoise", "dncnn-s25")
"""The shipped models that the panel offers (first: the default)."""
ORT_WEB_VERSION = "1.30.0"
ORT_WEB_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
ORT_WEB_SHA512 = ("ab4cbe26baedba45d2cec05610c71c55fa97db92d19a8b171c5f8269126683ca590a5cdc57bb2f35"
                  "ce2b298de32f4d956fb42644c0ecd528a0a91e025c07ca61")
"""SHA-512 of the tarball: the npm registry's ``dist.integrity`` of that version, in hex."""
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
"""The files of the plain WebAssembly backend, from the tarball's ``package/dist/``."""
ORT_LICENSE = """ONNX Runtime Web {version} (npm package onnxruntime-web, {url})
Files: {files}

MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.

The npm package does not include the notices of the third-party code built into the
WebAssembly file; they are in ThirdPartyNotices.txt of the ONNX Runtime repository
(github.com/microsoft/onnxruntime) and of its Python wheel (onnxruntime/ThirdPartyNotices.txt).
"""

ASSET_DIR = "denoiser"
"""Folder of the site's ``_static`` that holds the page's code and the built assets."""
DEFAULT_IMAGE = "set12/01.png"
MARKER = "data-nnimaging-denoiser"
"""Attribute of the panel's root element (the tests' and the build's way to find it)."""
MAX_SIDE = 512
DOWNLOAD_TIMEOUT_S = 120


class AssetError(RuntimeError):
    """A file the browser denoiser needs could not be made (download, checksum, export)."""


def _sha512(path: Path) -> str:
    return file_digest(path, "sha512")


def _default_cache() -> Path:
    return cache_dir()


def ort_web_tarball(cache_dir=None) -> Path:
    """The verified npm tarball of ONNX Runtime Web, from the cache or downloaded into it.

    Raises
    ------
    AssetError
        The download failed, or the file (cached or downloaded) does not have the pinned SHA-512;
        a file that fails the check is deleted, never used.
    """
    folder = Path(cache_dir) if cache_dir is not None else _default_cache()
    path = folder / "npm" / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    manual = (f"To build offline, put the tarball there yourself: `npm pack onnxruntime-web@{ORT_WEB_VERSION}` "
              f"writes it (or download {ORT_WEB_URL}).")
    if path.is_file():
        if _sha512(path) == ORT_WEB_SHA512:
            return path
        path.unlink()  # a truncated or altered copy: fetch it again
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    tmp = Path(tmp)
    try:
        with os.fdopen(handle, "wb") as out:
            request = urllib.request.Request(ORT_WEB_URL, headers={"User-Agent": "nnimaging-book-build"})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
                shutil.copyfileobj(response, out)
    except OSError as exc:  # URLError, HTTPError, timeouts, disk errors
        tmp.unlink(missing_ok=True)
        raise AssetError(f"The browser denoiser needs ONNX Runtime Web {ORT_WEB_VERSION}, which is not in the "
                         f"cache ({path}), and downloading {ORT_WEB_URL} failed: {type(exc).__name__}: {exc}. "
                         f"{manual}") from exc
    found = _sha512(tmp)
    if found != ORT_WEB_SHA512:
        tmp.unlink(missing_ok=True)
        raise AssetError(f"The download of {ORT_WEB_URL} has SHA-512 {found}, not the pinned {ORT_WEB_SHA512} "
                         f"(nnimaging.webdenoiser.ORT_WEB_SHA512); it was deleted and not used. {manual}")
    os.replace(tmp, path)
    return path


def _same_file(path: Path, data: bytes) -> bool:
    return path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data


def _install_runtime(target: Path, cache_dir) -> dict:
    """Extract the WebAssembly backend's files (only those) and write the licence next to them."""
    stamp = target / "VERSION"
    files = {name: target / name for name in ORT_WEB_FILES}
    if not (stamp.is_file() and stamp.read_text() == ORT_WEB_SHA512 and all(p.is_file() for p in files.values())):
        with tarfile.open(ort_web_tarball(cache_dir), "r:gz") as tar:
            for name, path in files.items():
                member = tar.getmember(f"package/dist/{name}")  # KeyError: not in this release
                _checks.atomic_write_bytes(path, tar.extractfile(member).read())
        _checks.atomic_write_bytes(stamp, ORT_WEB_SHA512.encode())
    license_text = ORT_LICENSE.format(version=ORT_WEB_VERSION, url=ORT_WEB_URL, files=", ".join(ORT_WEB_FILES))
    if not _same_file(target / "LICENSE.txt", license_text.encode()):
        _checks.atomic_write_bytes(target / "LICENSE.txt", license_text.encode())
    return {"version": ORT_WEB_VERSION, "path": "ort/", "script": "ort/ort.wasm.min.js",
            "license": "ort/LICENSE.txt", "bytes": {n: p.stat().st_size for n, p in files.items()}}


def model_info(name: str) -> dict:
    """Name, label and size of a shipped model, from the manifest; third-party weights are refused."""
    entries = {e["name"]: e for e in available()}
    if name not in entries:
        raise AssetError(f"no shipped model {name!r}; the browser denoiser can offer {', '.join(WEB_MODELS)}")
    entry = entries[name]
    if "source" in entry:  # downloaded weights of a paper, not trained by the book
        raise AssetError(f"{name!r} holds third-party weights ({entry['source']}); the browser denoiser runs "
                         "only the book's own networks")
    noise = entry.get("training", {}).get("noise", {})
    if "sigma" in noise:
        trained = f"trained at σ = {noise['sigma']:g}"
    elif "sigma_range" in noise:
        low, high = noise["sigma_range"]
        trained = f"blind, trained for σ {low:g}–{high:g}"
    else:
        trained = "trained by the book"
    kind = {"unet": "U-Net", "dncnn": "DnCNN"}.get(entry["architecture"], entry["architecture"])
    params = entry.get("parameters")
    size = f", {params / 1e6:.1f} M parameters" if params and params >= 1e6 else (
        f", {params / 1e3:.0f} k parameters" if params else "")
    return {"name": name, "label": f"{kind}, {trained}{size} ({name})", "parameters": params}


def install(static_dir, models=WEB_MODELS, cache_dir=None) -> dict:
    """Make the panel's assets in ``static_dir/denoiser/`` (the site's ``_static``); return the index.

    Everything is reused from the cache when it is there: a rebuild downloads and exports nothing.
    When nothing it depends on has changed since the last install into ``static_dir`` (the weights'
    manifest, the exporter, this module, PyTorch's version), it returns at once, without importing
    PyTorch, so a rebuild of the book stays fast.
    """
    target = Path(static_dir) / ASSET_DIR
    models = list(models)
    stamp, key = target / ".install-key", _install_key(models)
    if stamp.is_file() and stamp.read_text() == key and (target / "assets.json").is_file():
        index = json.loads((target / "assets.json").read_text())
        files = [f"ort/{n}" for n in ORT_WEB_FILES] + [m["file"] for m in index["models"]] + [index["image"]["file"]]
        if all((target / f).is_file() for f in files):
            return index
    cache = Path(cache_dir) if cache_dir is not None else _default_cache()
    index = {"ort": _install_runtime(target / "ort", cache), "models": [], "max_side": MAX_SIDE}
    for name in models:
        info = model_info(name)
        source = cached_export(name, cache / "onnx")
        data = source.read_bytes()
        path = target / "models" / f"{name}.onnx"
        if not _same_file(path, data):
            _checks.atomic_write_bytes(path, data)
        index["models"].append({**info, "file": f"models/{name}.onnx", "bytes": len(data),
                                "sha256": hashlib.sha256(data).hexdigest(),
                                "min_size": min_size(load_pretrained(name))})
    image = fetch(DEFAULT_IMAGE).read_bytes()
    image_path = target / "images" / ("-".join(Path(DEFAULT_IMAGE).parts))
    if not _same_file(image_path, image):
        _checks.atomic_write_bytes(image_path, image)
    index["image"] = {"file": f"images/{image_path.name}", "name": DEFAULT_IMAGE, "bytes": len(image)}
    text = json.dumps(index, indent=1, ensure_ascii=False).encode()
    if not _same_file(target / "assets.json", text):
        _checks.atomic_write_bytes(target / "assets.json", text)
    _checks.atomic_write_bytes(stamp, key.encode())
    return index


def _install_key(models) -> str:
    """What :func:`install` depends on, read without importing PyTorch."""
    from importlib.metadata import PackageNotFoundError, version

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(json.dumps([list(models), DEFAULT_IMAGE, ORT_WEB_SHA512, MAX_SIDE]).encode())
    for path in (here / "weights" / "manifest.json", here / "onnx_export.py", Path(__file__)):
        digest.update(path.read_bytes() if path.is_file() else b"-")
    try:
        digest.update(version("torch").encode())
    except PackageNotFoundError:  # pragma: no cover - torch is a requirement
        pass
    return digest.hexdigest()


def panel_html(models=WEB_MODELS, sigma: int = 25, seed: int = 0, uid: str = "1") -> str:
    """The panel's HTML (the ``{nnimaging-denoiser}`` directive writes this; its script fills it in).

    Parameters
    ----------
    models : sequence of str
        Shipped model names, the first selected.
    sigma : int
        Initial noise level on the 0..255 scale (0 to 75).
    seed : int
        Initial seed of the noise.
    uid : str
        Distinguishes the element ids of several panels on one page.
    """
    models = list(models)
    if not models:
        raise ValueError("the panel needs at least one model")
    if not 0 <= int(sigma) <= 75:
        raise ValueError(f"sigma must be in 0..75, got {sigma}")
    esc = html.escape
    p = f"nnimaging-denoiser-{esc(str(uid))}"
    options = "".join(f'<option value="{esc(m["name"])}">{esc(m["label"])}</option>'
                      for m in map(model_info, models))
    figure = ("<figure class=\"nnimaging-denoiser-image\" data-image=\"{key}\">"
              "<img alt=\"{alt}\" width=\"256\" height=\"256\" hidden>"
              "<figcaption>{title} <span class=\"nnimaging-denoiser-psnr\"></span></figcaption></figure>")
    images = "".join(figure.format(key=key, title=title, alt=alt) for key, title, alt in [
        ("clean", "Clean", "The clean image, before noise is added."),
        ("noisy", "Noisy", "The image with Gaussian noise added."),
        ("denoised", "Denoised", "The network's output: the denoised image."),
        ("removed", "Removed noise", "What the network removed (noisy minus denoised), mid-grey for zero."),
    ])
    return f"""<div class="nnimaging-denoiser" {MARKER} data-sigma="{int(sigma)}" data-seed="{int(seed)}">
<form class="nnimaging-denoiser-controls">
<div><label for="{p}-file">Your image (colour is converted to grey; larger than {MAX_SIDE} pixels is scaled down)</label>
<input id="{p}-file" type="file" name="image" accept="image/*"></div>
<div><label for="{p}-sigma">Noise level σ (0–255 scale): <output for="{p}-sigma" name="sigma-value">{int(sigma)}</output></label>
<input id="{p}-sigma" type="range" name="sigma" min="0" max="75" step="1" value="{int(sigma)}"></div>
<div><label for="{p}-seed">Noise seed</label>
<input id="{p}-seed" type="number" name="seed" min="0" max="4294967295" step="1" value="{int(seed)}"></div>
<div><label for="{p}-model">Network</label>
<select id="{p}-model" name="model">{options}</select></div>
<div><button type="submit" name="run">Add noise and denoise</button></div>
</form>
<p class="nnimaging-denoiser-source" aria-live="polite">Test image: Set12 01.png (256 × 256).</p>
<p class="nnimaging-denoiser-status" role="status" aria-live="polite">Runs in your browser with ONNX Runtime Web (WebAssembly); the runtime and the network are downloaded on the first run.</p>
<div class="nnimaging-denoiser-images">{images}</div>
<p class="nnimaging-denoiser-result" aria-live="polite">Denoised PSNR: <output data-role="psnr">–</output> dB</p>
<noscript><p>The browser denoiser needs JavaScript.</p></noscript>
</div>"""
