"""The experiments behind the numbers of chapters 5 and 6: ``python -m nnimaging.experiments NAME``.

Each experiment evaluates shipped models (or trains small ones) and writes ``NAME.json``
through :mod:`nnimaging.results`, with the command that made it, the software and the
hardware: into ``runs/results/`` (or ``--results-dir``) by default, and into the shipped
``nnimaging/results/`` only with ``--update-shipped`` (which refuses partial runs:
``--limit``, fewer datasets, noise levels or models than the shipped table). Chapters read these files; a reader can rerun the
command (on a GPU with ``--device cuda``) and compare. Experiments that take long are
resumable: rows already in the file (same model weights) are kept, and training runs
continue from their checkpoints.

================== =====================================================================
``denoise-table``  noisy input, best Gaussian filter, the shipped denoisers; Set12 and
                   BSD68 at sigma 15 / 25 / 50 (standard protocol of
                   :mod:`nnimaging.evaluate`)
``sigma-sweep``    PSNR against the noise level for the shipped denoisers (what a model
                   trained at sigma 25 does elsewhere, vs the blind models)
``ablations``      residual vs direct, BatchNorm vs none, bias vs bias-free, U-Net vs
                   encoder-decoder: equal steps, data and seed (:mod:`nnimaging.ablations`)
``deblur-table``   Wiener only, network only, Wiener + network at noise
                   0.005 / 0.01 / 0.02 on Set12 with the shipped deblurring U-Nets
``cpu-benchmark``  time and PSNR of the denoisers and of BM3D on one 512 x 512 image
``deep-image-prior`` the PSNR curve of a long deep-image-prior fit to one noisy image
``published-dncnn`` the DnCNN authors' own weights (:mod:`nnimaging.published`) under the
                   book's protocol, BSD68 and Set12, next to the paper's numbers
``dncnn3``         the authors' DnCNN-3 on denoising, super-resolution and JPEG deblocking
                   (Set12), each against its plain baseline
``training-curve`` test-set PSNR of every weight snapshot of training runs RUN_DIR ...
                   (:func:`nnimaging.runreport.training_curve`)
================== =====================================================================
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from . import _checks, ablations, models, results, runreport, weightstore
from .data import crop
from .deep_image_prior import deep_image_prior
from .degrade import Degradation, add_gaussian_noise
from .evaluate import GaussianFilterDenoiser, NoisyBaseline, denoise, evaluate_denoiser, psnr_8bit

__all__ = [
    "environment",
    "best_gaussian_width",
    "measure_denoisers",
    "sigma_sweep",
    "measure_deblurring",
    "cpu_benchmark",
    "deep_image_prior_curve",
    "main",
]

DENOISERS = ("dncnn-s25", "dncnn-b", "unet-denoise")
"""The shipped denoisers, in the order the tables list them."""


environment = results.environment
RUNS_RESULTS = results.RUNS_RESULTS
_results_dir = results.folder
_save = results.write
_record = results.record


def _load_images(dataset: str, limit: int | None = None):
    from . import data

    images, names = data.load_images(dataset, return_names=True)
    if limit is not None:
        images, names = images[:limit], names[:limit]
    return images, names


def _pretrained(name: str, device: str, weights_dir=None):
    model = weightstore.load_pretrained(name, weights_dir=weights_dir).to(device)
    return model, model.pretrained


def _progress(iterable, enabled: bool, **kwargs):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


# ----------------------------------------------------------------------------------------
# denoising
# ----------------------------------------------------------------------------------------


def best_gaussian_width(sigma: float, images, widths=None, seed: int = 0) -> tuple[float, float]:
    """The Gaussian-filter width (pixels) with the best mean PSNR on ``images`` at noise ``sigma``.

    Chosen on training images, not on the test set, so the baseline is tuned the way a
    learned model is. Returns ``(width, mean PSNR on those images)``.
    """
    widths = np.round(np.arange(0.3, 3.01, 0.1), 2) if widths is None else np.asarray(widths, dtype=float)
    noisy = [add_gaussian_noise(im, sigma, seed + i) for i, im in enumerate(images)]
    best = (float(widths[0]), -np.inf)
    for width in widths:
        model = GaussianFilterDenoiser(float(width))
        score = float(np.mean([psnr_8bit(denoise(model, y), x) for y, x in zip(noisy, images)]))
        if score > best[1]:
            best = (float(width), score)
    return best


def _upsert(rows: list[dict], row: dict, keys: tuple[str, ...]) -> None:
    for i, old in enumerate(rows):
        if all(old.get(k) == row.get(k) for k in keys):
            rows[i] = row
            return
    rows.append(row)


def _have(rows: list[dict], **match) -> bool:
    return any(all(r.get(k) == v for k, v in match.items()) for r in rows)


def measure_denoisers(
    denoisers=DENOISERS,
    datasets=("set12", "bsd68"),
    sigmas=(15, 25, 50),
    seed: int = 0,
    device: str = "cpu",
    limit: int | None = None,
    name: str = "denoising",
    results_dir=None,
    update_shipped: bool = False,
    weights_dir=None,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """Mean PSNR of baselines and shipped denoisers; rows are added to ``results/NAME.json`` as they finish.

    A model trained at one noise level (its manifest says ``noise: {sigma: s}``) is only
    evaluated at that level; blind models at every level. The Gaussian filter's width is
    chosen per sigma on 20 Train400 images (:func:`best_gaussian_width`).
    """
    try:
        record = results.load(name, _results_dir(results_dir, update_shipped))
    except results.ResultsNotFoundError:
        record = {}
    # rows of an earlier call are reused only if made with the same seed on the same images
    rows = list(record.get("rows", [])) if record.get("seed") == seed else []
    record = _record(command, device, protocol="nnimaging.evaluate (noise in float64 re-seeded per image, "
                     "not clipped; output clipped and rounded to 8 bits; PSNR peak 255 averaged over images)",
                     seed=seed, limit=limit, rows=rows)
    train_images = None
    loaded = {name_: _pretrained(name_, device, weights_dir) for name_ in denoisers}
    for dataset in datasets:
        images, names = _load_images(dataset, limit)
        for sigma in sigmas:
            sigma = float(sigma)
            methods = []
            same = {"dataset": dataset, "sigma": sigma, "images": len(images)}
            if not _have(rows, method="noisy", **same):
                methods.append(("noisy", NoisyBaseline(), {}))
            if not _have(rows, method="gaussian", **same):
                if train_images is None:
                    train_images = _load_images("train400", 20)[0]
                width, _ = best_gaussian_width(sigma, train_images)
                methods.append(("gaussian", GaussianFilterDenoiser(width).to(device), {"width": width}))
            for model_name, (model, entry) in loaded.items():
                noise = entry.get("training", {}).get("noise", {})
                if "sigma" in noise and float(noise["sigma"]) != sigma:
                    continue
                if _have(rows, method=model_name, sha256=entry["sha256"], **same):
                    continue
                methods.append((model_name, model, {"sha256": entry["sha256"]}))
            for method, model, extra in methods:
                started = time.perf_counter()
                res = evaluate_denoiser(model, images, sigma, seed, names, progress=progress)
                row = {
                    "method": method,
                    "dataset": dataset,
                    "sigma": sigma,
                    "images": len(images),
                    "mean_psnr": res["mean_psnr"],
                    "mean_noisy_psnr": res["mean_noisy_psnr"],
                    "per_image": {r["name"]: round(r["psnr"], 4) for r in res["images"]},
                    "seconds": round(time.perf_counter() - started, 2),
                    **extra,
                }
                _upsert(rows, row, ("method", "dataset", "sigma"))
                _save(name, record, results_dir, update_shipped)
                if progress:
                    print(f"{method:>14} {dataset:>6} sigma {sigma:4g}: {row['mean_psnr']:.2f} dB", file=sys.stderr)
    _save(name, record, results_dir, update_shipped)
    return record


def sigma_sweep(
    denoisers=DENOISERS,
    dataset: str = "set12",
    limit: int | None = 4,
    sigmas=tuple(range(5, 75, 5)),
    seed: int = 0,
    device: str = "cpu",
    name: str = "sigma_sweep",
    results_dir=None,
    update_shipped: bool = False,
    weights_dir=None,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """Mean PSNR against the noise level for each denoiser (and the noisy input)."""
    images, names = _load_images(dataset, limit)
    curves = {}
    noisy = []
    for sigma in sigmas:
        noisy.append(evaluate_denoiser(NoisyBaseline(), images, float(sigma), seed, names)["mean_psnr"])
    for model_name in denoisers:
        model, entry = _pretrained(model_name, device, weights_dir)
        curve = [
            evaluate_denoiser(model, images, float(sigma), seed, names)["mean_psnr"]
            for sigma in _progress(sigmas, progress, desc=model_name)
        ]
        curves[model_name] = {"psnr": curve, "sha256": entry["sha256"], "noise": entry["training"].get("noise")}
    record = _record(command, device, dataset=dataset, images=names, seed=seed, sigmas=[float(s) for s in sigmas],
                     noisy_psnr=noisy, models=curves)
    _save(name, record, results_dir, update_shipped)
    return record


# ----------------------------------------------------------------------------------------
# deblurring: Wiener, network, Wiener + network
# ----------------------------------------------------------------------------------------


def measure_deblurring(
    network: str = "unet-deblur",
    wiener_network: str = "unet-wiener",
    noise_levels=(0.005, 0.01, 0.02),
    dataset: str = "set12",
    limit: int | None = None,
    seed: int = 0,
    device: str = "cpu",
    name: str = "deblurring",
    results_dir=None,
    update_shipped: bool = False,
    weights_dir=None,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """PSNR of Wiener deconvolution, a network on the blurred input, and a network after Wiener.

    The blur kernel and the Wiener NSR are the ones the shipped networks were trained with
    (their manifests record the degradation); the networks must agree on the kernel.
    """
    net, net_entry = _pretrained(network, device, weights_dir)
    wnet, wnet_entry = _pretrained(wiener_network, device, weights_dir)
    spec, nsr = weightstore.wiener_training(wnet_entry, wiener_network)
    d_net = net_entry["training"].get("degradation", {})
    if d_net.get("task") != "deblur":
        raise ValueError(f"{network} must be trained on blurred input (its manifest says {d_net})")
    if d_net["blur"] != spec:
        raise ValueError(f"the networks were trained for different blurs: {d_net['blur']} and {spec}")
    images, names = _load_images(dataset, limit)
    methods = {
        "wiener": (NoisyBaseline(), Degradation(spec, nsr)),
        "network": (net, Degradation(spec)),
        "wiener+network": (wnet, Degradation(spec, nsr)),
    }
    rows = []
    blurred_noisy = {}
    for level in _progress(noise_levels, progress, desc="noise levels"):
        sigma = 255.0 * float(level)
        blurred_noisy[str(level)] = evaluate_denoiser(NoisyBaseline(), images, sigma, seed, names,
                                                      degradation=Degradation(spec))["mean_psnr"]
        for method, (model, degradation) in methods.items():
            res = evaluate_denoiser(model, images, sigma, seed, names, degradation=degradation)
            rows.append({"method": method, "noise": float(level), "mean_psnr": res["mean_psnr"],
                         "per_image": {r["name"]: round(r["psnr"], 4) for r in res["images"]}})
    record = _record(
        command, device, dataset=dataset, images=names, seed=seed, blur=spec, wiener_nsr=nsr,
        networks={network: net_entry["sha256"], wiener_network: wnet_entry["sha256"]},
        blurred_noisy_psnr=blurred_noisy, rows=rows,
    )
    _save(name, record, results_dir, update_shipped)
    return record


# ----------------------------------------------------------------------------------------
# CPU benchmark against BM3D
# ----------------------------------------------------------------------------------------


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def cpu_benchmark(
    denoisers=DENOISERS,
    image: str = "set12/08",
    sigma: float = 25.0,
    seed: int = 0,
    repeats: int = 3,
    bm3d: bool = True,
    name: str = "cpu_benchmark",
    results_dir=None,
    update_shipped: bool = False,
    weights_dir=None,
    command: str | None = None,
) -> dict:
    """Seconds and PSNR to denoise one image on the CPU, for each denoiser and (if installed) BM3D.

    BM3D comes from the ``bm3d`` package (Mäkinen, Azzari and Foi; free for non-commercial
    use), which the book does not require: ``pip install bm3d`` to include it.
    """
    dataset, _, stem = image.partition("/")
    images, names = _load_images(dataset)
    if stem not in names:
        raise ValueError(f"no image {stem!r} in {dataset} (have {', '.join(names)})")
    clean = images[names.index(stem)]
    noisy = add_gaussian_noise(clean, sigma, seed)
    rows = [{"method": "noisy", "psnr": psnr_8bit(noisy, clean), "seconds": 0.0}]
    for model_name in denoisers:
        model, entry = _pretrained(model_name, "cpu", weights_dir)
        out = denoise(model, noisy)
        seconds = _median_time(lambda: denoise(model, noisy), repeats)
        rows.append({"method": model_name, "psnr": psnr_8bit(out, clean), "seconds": seconds,
                     "parameters": models.count_parameters(model)})
    if bm3d:
        try:
            import bm3d as bm3d_pkg
        except ImportError:
            rows.append({"method": "bm3d", "skipped": "the bm3d package is not installed (pip install bm3d)"})
        else:
            started = time.perf_counter()
            out = bm3d_pkg.bm3d(noisy.astype(np.float64), sigma_psd=sigma / 255.0)
            rows.append({"method": "bm3d", "psnr": psnr_8bit(out, clean), "seconds": time.perf_counter() - started,
                         "version": getattr(bm3d_pkg, "__version__", None) or _dist_version("bm3d")})
    record = _record(command, "cpu", image=image, shape=list(clean.shape), sigma=float(sigma), seed=seed,
                     repeats=repeats, rows=rows)
    _save(name, record, results_dir, update_shipped)
    return record


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def deep_image_prior_curve(
    image: str = "set12/02",
    top: int = 64,
    left: int = 64,
    size: int = 128,
    sigma: float = 25.0,
    steps: int = 3000,
    depth: int = 3,
    width: int = 16,
    lr: float = 0.01,
    input_noise: float = 1 / 30,
    every: int = 10,
    seed: int = 0,
    device: str = "cpu",
    name: str = "deep_image_prior",
    results_dir=None,
    update_shipped: bool = False,
    command: str | None = None,
    progress: bool = True,
) -> dict:
    """Fit :func:`nnimaging.deep_image_prior.deep_image_prior` to one noisy crop for ``steps`` updates; store its curves.

    The curves (MSE to the noisy image, PSNR against the clean one) are stored every
    ``every`` updates, with the best iteration and PSNR.
    """
    clean = crop(image, top, left, size)
    noisy = add_gaussian_noise(clean, sigma, seed)
    started = time.perf_counter()
    run = deep_image_prior(noisy, clean, steps=steps, depth=depth, width=width, lr=lr, input_noise=input_noise,
                           seed=seed, snapshot_every=max(steps, 1), device=device, progress=progress)
    seconds = time.perf_counter() - started
    iterations = list(range(0, steps + 1, every))
    record = _record(
        command, device, image=image, crop={"top": top, "left": left, "size": size}, sigma=float(sigma), seed=seed,
        settings={"steps": steps, "depth": depth, "width": width, "lr": lr, "input_noise": input_noise},
        seconds=round(seconds, 1), noisy_psnr=psnr_8bit(noisy, clean), iterations=iterations,
        loss=[float(run["loss"][t]) for t in iterations], psnr=[float(run["psnr"][t]) for t in iterations],
        best_iteration=int(run["best_iteration"]), best_psnr=float(run["best_psnr"]),
        final_psnr=float(run["psnr"][-1]),
    )
    _save(name, record, results_dir, update_shipped)
    return record


# ----------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nnimaging.experiments", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="experiment", required=True)

    def common(sp, device=True):
        if device:
            sp.add_argument("--device", default="cpu", help="cpu or cuda")
        sp.add_argument("--results-dir", default=None, help=f"where to write NAME.json (default: {RUNS_RESULTS}/)")
        sp.add_argument("--update-shipped", action="store_true",
                        help="write the shipped file in the package's results/ (full runs only)")
        sp.add_argument("--no-progress", action="store_true")
        return sp

    sp = common(sub.add_parser("denoise-table", help="baselines and shipped denoisers on Set12 and BSD68"))
    sp.add_argument("--datasets", nargs="+", default=["set12", "bsd68"])
    sp.add_argument("--sigmas", nargs="+", type=float, default=[15, 25, 50])
    sp.add_argument("--models", nargs="+", default=list(DENOISERS))
    sp.add_argument("--limit", type=int, default=None)
    sp = common(sub.add_parser("sigma-sweep", help="PSNR against the noise level"))
    sp.add_argument("--models", nargs="+", default=list(DENOISERS))
    sp.add_argument("--limit", type=int, default=4)
    sp = common(sub.add_parser("ablations", help="residual, BatchNorm, bias, skip connections: pairs trained alike"))
    sp.add_argument("--studies", nargs="+", default=list(ablations.STUDIES), choices=list(ablations.STUDIES))
    sp.add_argument("--steps", type=int, default=None,
                    help=f"training steps of each network (default {ablations.COMMON['steps']})")
    sp.add_argument("--limit", type=int, default=None)
    sp.add_argument("--runs-dir", default="runs/ablations")
    sp = common(sub.add_parser("deblur-table", help="Wiener, network, Wiener + network on Set12"))
    sp.add_argument("--limit", type=int, default=None)
    sp = common(sub.add_parser("deep-image-prior", help="a long deep-image-prior fit and its PSNR curve"))
    sp.add_argument("--steps", type=int, default=3000)
    sp.add_argument("--size", type=int, default=128)
    sp = common(sub.add_parser("cpu-benchmark", help="time and PSNR on one 512 x 512 image, with BM3D"), device=False)
    sp.add_argument("--no-bm3d", action="store_true")
    sp.add_argument("--repeats", type=int, default=3)
    common(sub.add_parser("published-dncnn", help="the DnCNN authors' weights under the book's protocol "
                          "(BSD68 and Set12, sigma 15 / 25 / 50) next to the paper's numbers"))
    sp = common(sub.add_parser("training-curve", help="test-set PSNR of every weight snapshot of a training run"))
    sp.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                    help="run directories of nnimaging.train with snapshots/ (--snapshot-minutes); several: one "
                         "training in stages (each continued from the last with --init), in order")
    sp.add_argument("--dataset", default="bsd68", choices=["bsd68", "set12"])
    sp.add_argument("--sigmas", nargs="+", type=float, default=[15, 25, 50])
    sp.add_argument("--limit", type=int, default=None)
    common(sub.add_parser("dncnn3", help="the authors' DnCNN-3 on denoising, super-resolution and JPEG "
                          "deblocking (Set12) against each task's plain baseline"))
    return p


_RESULTS_NAMES = {"denoise-table": "denoising", "sigma-sweep": "sigma_sweep",
                  "deblur-table": "deblurring", "deep-image-prior": "deep_image_prior", "cpu-benchmark": "cpu_benchmark"}


def _results_file(a) -> Path:
    name = _RESULTS_NAMES.get(a.experiment, a.experiment.replace("-", "_"))
    return _results_dir(a.results_dir, a.update_shipped) / f"{name}.json"


def _check_args(a) -> None:
    """Counts, sizes and the output folder, checked before any work (``UsageError``)."""
    for flag in ("limit", "max_steps", "steps", "size", "repeats"):
        if getattr(a, flag, None) is not None:
            _checks.positive_int("--" + flag.replace("_", "-"), getattr(a, flag))
    if getattr(a, "minutes", None) is not None:
        _checks.positive_number("--minutes", a.minutes)
    for sigma in getattr(a, "sigmas", None) or ():
        _checks.non_negative_number("--sigmas", sigma)
    partial = []
    if getattr(a, "limit", None) is not None and (a.experiment != "sigma-sweep" or a.limit != 4):
        partial.append(f"--limit {a.limit}")
    if getattr(a, "datasets", None) is not None and sorted(a.datasets) != ["bsd68", "set12"]:
        partial.append("--datasets " + " ".join(a.datasets))
    if getattr(a, "sigmas", None) is not None and a.experiment != "training-curve" \
            and sorted(a.sigmas) != [15.0, 25.0, 50.0]:  # a curve is whole at any noise levels it names
        partial.append("--sigmas " + " ".join(f"{s:g}" for s in a.sigmas))
    if getattr(a, "studies", None) is not None and sorted(a.studies) != sorted(ablations.STUDIES):
        partial.append("--studies " + " ".join(a.studies))
    if a.experiment == "ablations" and a.steps is not None and a.steps != ablations.COMMON["steps"]:
        partial.append(f"--steps {a.steps}")
    if getattr(a, "models", None) is not None and sorted(a.models) != sorted(DENOISERS):
        partial.append("--models " + " ".join(a.models))
    if a.update_shipped:
        if a.results_dir is not None:
            raise _checks.UsageError("--update-shipped writes the package's results/; drop --results-dir")
        if partial:
            raise _checks.UsageError(f"--update-shipped needs the full table, but this run is partial "
                                     f"({', '.join(partial)}); drop those flags or write elsewhere (--results-dir)")
    target = _results_file(a)
    _checks.writable_file(target, "results file")


def main(argv=None) -> dict:
    """Command-line entry point (``python -m nnimaging.experiments NAME [options]``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    a = _parser().parse_args(argv)
    _check_args(a)
    command = "python -m nnimaging.experiments " + shlex.join(argv)
    record = _run(a, command)
    where = _results_file(a)
    note = "" if a.update_shipped else " (not the shipped file; --update-shipped writes that)"
    print(f"wrote {where}{note}", file=sys.stderr)
    return record


def _run(a, command: str) -> dict:
    common = {"results_dir": a.results_dir, "update_shipped": a.update_shipped, "command": command}
    if a.experiment in ("published-dncnn", "dncnn3"):
        from . import published_eval

        run = published_eval.protocol_check if a.experiment == "published-dncnn" else published_eval.dncnn3_table
        return run(device=a.device, progress=not a.no_progress, **common)
    if a.experiment == "training-curve":
        return runreport.training_curve(a.run_dirs, a.dataset, a.sigmas, device=a.device, limit=a.limit,
                              progress=not a.no_progress, **common)
    if a.experiment == "denoise-table":
        return measure_denoisers(a.models, a.datasets, a.sigmas, device=a.device, limit=a.limit,
                             progress=not a.no_progress, **common)
    if a.experiment == "sigma-sweep":
        return sigma_sweep(a.models, limit=a.limit, device=a.device, progress=not a.no_progress, **common)
    if a.experiment == "ablations":
        return ablations.run(a.studies, device=a.device, runs_dir=a.runs_dir, steps=a.steps, limit=a.limit,
                             progress=not a.no_progress, **common)
    if a.experiment == "deep-image-prior":
        return deep_image_prior_curve(steps=a.steps, size=a.size, device=a.device, progress=not a.no_progress, **common)
    if a.experiment == "deblur-table":
        return measure_deblurring(device=a.device, limit=a.limit, progress=not a.no_progress, **common)
    return cpu_benchmark(bm3d=not a.no_bm3d, repeats=a.repeats, **common)


if __name__ == "__main__":
    _checks.run_cli(main, prog="python -m nnimaging.experiments")
