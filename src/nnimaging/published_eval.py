"""The DnCNN authors' networks (:mod:`nnimaging.published`) run under the book's protocol.

* DnCNN-3's other tasks: :func:`bicubic_rescale` and :func:`jpeg` make the inputs of
  super-resolution and JPEG deblocking, :func:`degrade` any of the three tasks;
* the experiments behind chapters 5 and 8, ``python -m nnimaging.experiments published-dncnn``
  (:func:`protocol_check`) and ``dncnn3`` (:func:`dncnn3_table`), which write
  ``results/published_dncnn.json`` and ``results/dncnn3.json``;
* their tables (:func:`comparison_table`, :func:`dncnn3_results_table`) and the demo of DnCNN-3
  on its three tasks (:func:`dncnn3_demo`).
"""

from __future__ import annotations

import io
import sys
import time

import numpy as np
from PIL import Image as PILImage

from . import data, results
from .degrade import add_gaussian_noise
from .demo import Choice, Demo, Image, Panel, register
from .denoising import METHOD_LABELS, PUBLISHED, PUBLISHED_SOURCE, SHIPPED_LABELS, Table
from .evaluate import denoise, evaluate_denoiser, psnr_8bit
from .published import _PAPER, SOURCE_COMMIT, SOURCE_REPOSITORY, WEIGHTS, _weights, load

__all__ = ["bicubic_rescale", "jpeg", "degrade", "protocol_check", "dncnn3_table", "comparison_table",
           "dncnn3_results_table", "dncnn3_demo", "DNCNN3_TASKS", "PROTOCOL_RUNS", "DEMO_CROP"]


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


@register("published.dncnn3")  # the name its pages were built with
def dncnn3_demo(image: str = DEMO_CROP["image"], top: int = DEMO_CROP["top"], left: int = DEMO_CROP["left"],
                size: int = DEMO_CROP["size"], seed: int = 0) -> Demo:
    """One network, three tasks: the degraded crop, DnCNN-3's output and the clean crop, for a choice of task.

    Every setting (three noise levels, three upscaling factors, three JPEG qualities) is computed
    in Python when the cell runs and embedded in the page (no JavaScript twin). The whole image is
    degraded, so JPEG blocks and the bicubic filter see the real image; the network runs on the
    crop and a margin of 24 pixels, which gives the same crop of the output as the whole image
    would (its receptive field reaches 20 pixels). PSNRs are those of the crop.
    """
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
