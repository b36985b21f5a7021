"""Learned denoising with DnCNN (chapter 5): tables, figures and the noise-level demo.

The networks, their training and the evaluation protocol live elsewhere
(:mod:`nnimaging.models`, :mod:`nnimaging.train`, :mod:`nnimaging.evaluate`); the numbers
that need more compute than a chapter may spend are in :mod:`nnimaging.results`. This
module holds the plumbing that turns them into what the chapter shows:

* tables: :func:`denoising_table` (the shipped denoisers and the baselines next to the
  published numbers of :data:`PUBLISHED`), :func:`benchmark_table` (seconds and PSNR on
  one image, BM3D included). Each returns a :class:`Table`, shown as an HTML table in a
  notebook and as aligned text elsewhere (the ablations' tables: :mod:`nnimaging.ablations`);
* the training log of :func:`nnimaging.train.train`: :func:`read_log`;
* figures: :func:`plot_training_loss`, :func:`plot_denoised`, :func:`plot_sigma_sweep`;
* the demo: :func:`noise_level_frame` computes one setting (noisy image, denoised image,
  removed noise, PSNRs) and :func:`noise_level_demo` shows it with a slider for the noise
  level and a choice of model; every frame is precomputed (no JavaScript twin).

Conventions: images are ``(H, W)`` float arrays with values in [0, 1]; noise levels
``sigma`` are standard deviations on the 0..255 scale (``sigma=25`` adds noise of standard
deviation ``25/255``); PSNR is in dB with the protocol of
:mod:`nnimaging.evaluate` (8-bit output, peak 255).

References
----------
K. Zhang, W. Zuo, Y. Chen, D. Meng, L. Zhang, "Beyond a Gaussian Denoiser: Residual
Learning of Deep CNN for Image Denoising", IEEE Trans. Image Processing 26(7), 2017.

S. Mohan, Z. Kadkhodaie, E. P. Simoncelli, C. Fernandez-Granda, "Robust and interpretable
blind image denoising via bias-free convolutional neural networks", ICLR 2020.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import data
from ._checks import SIGMA_UNIT, float_image, positive_number
from .demo import Choice, Demo, Image, Panel, Slider, register

__all__ = [
    "PUBLISHED",
    "PUBLISHED_SOURCE",
    "METHOD_LABELS",
    "SHIPPED_LABELS",
    "DEMO_MODELS",
    "DEMO_IMAGE",
    "DEMO_SIGMAS",
    "Table",
    "denoising_table",
    "benchmark_table",
    "read_log",
    "plot_training_loss",
    "plot_denoised",
    "plot_sigma_sweep",
    "noise_level_frame",
    "noise_level_demo",
]

PUBLISHED = {
    ("bm3d", "bsd68", 15.0): 31.07,
    ("bm3d", "bsd68", 25.0): 28.57,
    ("bm3d", "bsd68", 50.0): 25.62,
    ("dncnn-s", "bsd68", 15.0): 31.73,
    ("dncnn-s", "bsd68", 25.0): 29.23,
    ("dncnn-s", "bsd68", 50.0): 26.23,
    ("dncnn-b", "bsd68", 15.0): 31.61,
    ("dncnn-b", "bsd68", 25.0): 29.16,
    ("dncnn-b", "bsd68", 50.0): 26.23,
    ("bm3d", "set12", 25.0): 29.97,
    ("dncnn-s", "set12", 25.0): 30.44,
}
"""Mean PSNR (dB) published by Zhang et al. (2017): ``(method, dataset, sigma) -> dB``.

BSD68 averages from their Table II (BM3D, DnCNN-S trained for each noise level, blind
DnCNN-B) and the Set12 averages at sigma 25 from their Table III. DnCNN-S was trained for
about 6 hours on a GPU (50 epochs of 1600 batches of 128 patches)."""

PUBLISHED_SOURCE = "Zhang et al. (2017), Tables II and III"
"""Where the numbers of :data:`PUBLISHED` come from."""

METHOD_LABELS = {
    "noisy": "noisy input",
    "gaussian": "Gaussian filter, best width",
    "bm3d": "BM3D",
    "dncnn-s": "DnCNN-S",
    "dncnn-b": "DnCNN-B",
}
"""Row labels of the baselines and of the published methods (keys of :data:`PUBLISHED`)."""

SHIPPED_LABELS = {
    "dncnn-s25": "DnCNN-S, ours (dncnn-s25)",
    "dncnn-b": "DnCNN-B, ours (dncnn-b)",
    "unet-denoise": "U-Net, ours (unet-denoise)",
}
"""Row labels of the shipped models (``"dncnn-b"`` names both a published method and a
shipped model; the tables tell them apart by these labels)."""

DEMO_MODELS = ("dncnn-s25", "dncnn-b")
"""The shipped models the demo offers: one trained at sigma 25, one blind."""

DEMO_IMAGE = {"image": "set12/01", "top": 24, "left": 72, "size": 96}
"""The demo's default crop: the head and camera of Set12's cameraman, 96 x 96 (small, because
every frame of the demo embeds its three images in the page)."""

DEMO_SIGMAS = (5, 55, 10)
"""The demo's noise levels: 5, 15, ..., 55 (first, last, step; 0..255 scale): the training
level of dncnn-s25 and the top of the blind models' training range are among them."""

_MISSING = "–"


# ----------------------------------------------------------------------------- tables
@dataclass
class Table:
    """A small table of formatted cells, shown as HTML in a notebook and as text otherwise.

    Parameters
    ----------
    columns : list of str
        Column headers (without the row-label column).
    rows : list of (label, cells)
        One row per entry: its label and one formatted string per column.
    caption : str
        What the numbers are and where they come from.
    row_header : str
        Header of the row-label column.
    """

    columns: list[str]
    rows: list[tuple[str, list[str]]]
    caption: str = ""
    row_header: str = ""
    _index: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        for label, cells in self.rows:
            if len(cells) != len(self.columns):
                raise ValueError(f"row {label!r} has {len(cells)} cells for {len(self.columns)} columns")
        self._index = {label: i for i, (label, _) in enumerate(self.rows)}

    @property
    def labels(self) -> list[str]:
        """The row labels, top to bottom."""
        return [label for label, _ in self.rows]

    def cell(self, row: str, column: str) -> str:
        """The formatted cell in row ``row`` (its label) and column ``column`` (its header)."""
        if row not in self._index:
            raise KeyError(f"no row {row!r}; rows: {self.labels}")
        if column not in self.columns:
            raise KeyError(f"no column {column!r}; columns: {self.columns}")
        return self.rows[self._index[row]][1][self.columns.index(column)]

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f'<th scope="col">{esc(c)}</th>' for c in self.columns)
        body = "".join(
            f'<tr><th scope="row" style="text-align:left">{esc(label)}</th>'
            + "".join(f'<td style="text-align:right">{esc(c)}</td>' for c in cells)
            + "</tr>"
            for label, cells in self.rows
        )
        caption = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        return (
            f'<table class="nnimaging-table">{caption}<thead><tr>'
            f'<th scope="col" style="text-align:left">{esc(self.row_header)}</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
        )

    def __repr__(self) -> str:
        table = [[self.row_header, *self.columns]] + [[label, *cells] for label, cells in self.rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                 for r in table]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(([self.caption] if self.caption else []) + lines)


def _db(value) -> str:
    return _MISSING if value is None else f"{float(value):.2f}"


def _sigma_label(sigma: float) -> str:
    return f"σ={float(sigma):g}"


def _check_record(record, keys: Sequence[str], what: str) -> None:
    if not isinstance(record, Mapping):
        raise TypeError(f"expected the {what} results record (a dict from nnimaging.results.load), "
                        f"got {type(record).__name__}")
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f"the {what} record lacks the keys {missing} (has {sorted(record)})")


def denoising_table(
    record: Mapping,
    published: Mapping = PUBLISHED,
    datasets: Sequence[str] = ("set12", "bsd68"),
    sigmas: Sequence[float] = (15, 25, 50),
    models: Sequence[str] = ("dncnn-s25", "dncnn-b", "unet-denoise"),
) -> Table:
    """Mean PSNR of the baselines, the published methods and the shipped denoisers.

    Parameters
    ----------
    record : dict
        ``nnimaging.results.load("denoising")``: ``rows`` of ``{"method", "dataset",
        "sigma", "mean_psnr", ...}``.
    published : dict
        ``(method, dataset, sigma) -> dB`` (default :data:`PUBLISHED`); its methods
        ``"bm3d"``, ``"dncnn-s"``, ``"dncnn-b"`` become rows marked "(published)".
    datasets, sigmas : sequences
        The columns: one per dataset and noise level (0..255 scale), in this order.
    models : sequence of str
        Shipped models to list, in this order, after the published rows.

    Returns
    -------
    Table
        Rows: noisy input and the Gaussian filter (measured), BM3D, DnCNN-S and DnCNN-B
        (published), then the shipped models (measured). Columns ``"Set12 σ=25"`` etc.
        Cells hold the mean PSNR with two decimals, ``"–"`` where there is no number (a
        model trained at one noise level is only evaluated there).
    """
    _check_record(record, ["rows"], "denoising")
    names = {"set12": "Set12", "bsd68": "BSD68"}
    columns = [(d, float(s)) for d in datasets for s in sigmas]
    headers = [f"{names.get(d, d)} {_sigma_label(s)}" for d, s in columns]
    measured = {}
    for row in record["rows"]:
        measured[(row["method"], row["dataset"], float(row["sigma"]))] = row["mean_psnr"]

    def measured_row(method, label):
        return label, [_db(measured.get((method, d, s))) for d, s in columns]

    rows = [measured_row("noisy", METHOD_LABELS["noisy"]), measured_row("gaussian", METHOD_LABELS["gaussian"])]
    for method in ("bm3d", "dncnn-s", "dncnn-b"):
        if any(key[0] == method for key in published):
            rows.append((f"{METHOD_LABELS[method]} (published)",
                         [_db(published.get((method, d, s))) for d, s in columns]))
    for model in models:
        rows.append(measured_row(model, SHIPPED_LABELS.get(model, f"{model} (ours)")))
    caption = (f"Mean PSNR in dB. Published: {PUBLISHED_SOURCE}. Measured: this book's code and "
               "weights (results/denoising.json).")
    return Table(headers, rows, caption, row_header="method")


def benchmark_table(record: Mapping) -> Table:
    """Seconds and PSNR of each method on the benchmark image (``results.load("cpu_benchmark")``).

    Returns
    -------
    Table
        One row per method (labels from :data:`SHIPPED_LABELS` and :data:`METHOD_LABELS`), columns ``"PSNR (dB)"``,
        ``"seconds"`` and ``"parameters"``. A method the benchmark skipped (BM3D without
        its package) shows the reason in its first cell.
    """
    _check_record(record, ["rows", "image", "sigma"], "cpu_benchmark")
    columns = ["PSNR (dB)", "seconds", "parameters"]
    rows = []
    for row in record["rows"]:
        if row["method"] == "bm3d":
            label = "BM3D (bm3d package)"
        else:
            label = SHIPPED_LABELS.get(row["method"]) or METHOD_LABELS.get(row["method"], row["method"])
        if "skipped" in row:
            rows.append((label, [f"not measured: {row['skipped']}", _MISSING, _MISSING]))
            continue
        seconds = _MISSING if row["method"] == "noisy" else f"{float(row['seconds']):.2f}"
        parameters = f"{int(row['parameters']):,}" if "parameters" in row else _MISSING
        rows.append((label, [_db(row.get("psnr")), seconds, parameters]))
    caption = (f"Image {record['image']}, noise σ={float(record['sigma']):g}, one CPU "
               f"({record.get('hardware', 'hardware not recorded')}); results/cpu_benchmark.json.")
    return Table(columns, rows, caption, row_header="method")


# ----------------------------------------------------------------------------- training log
def read_log(path) -> dict:
    """The loss curve of a training run of :func:`nnimaging.train.train`.

    Parameters
    ----------
    path : path
        A run directory (holding ``log.jsonl``) or the log file itself.

    Returns
    -------
    dict
        ``"step"`` (int array) and ``"loss"`` (float array): the mean training loss over each
        logging interval, ending at that step; ``"val_psnr"``: the last validation PSNR in dB
        (None if the run did not validate).
    """
    from .trainrun import read_log_records

    steps, losses, val = [], [], None
    for rec in read_log_records(path):
        if "loss" in rec:
            steps.append(int(rec["step"]))
            losses.append(float(rec["loss"]))
        if rec.get("val_psnr") is not None:
            val = float(rec["val_psnr"])
    return {"step": np.array(steps, dtype=np.int64), "loss": np.array(losses, dtype=np.float64), "val_psnr": val}


# ----------------------------------------------------------------------------- figures
def plot_training_loss(steps, losses, sigma: float | None = None, title: str | None = None):
    """Training loss against the step (log scale), with the loss of doing nothing.

    Parameters
    ----------
    steps, losses : 1-D arrays of the same length
        From :func:`read_log`.
    sigma : float, optional
        Noise level of the training (0..255 scale): draws the MSE of returning the noisy
        input, ``(sigma / 255)^2``, as a dashed line.
    """
    import matplotlib.pyplot as plt

    steps, losses = np.asarray(steps, float), np.asarray(losses, float)
    if steps.shape != losses.shape or steps.ndim != 1 or steps.size == 0:
        raise ValueError(f"steps and losses must be 1-D arrays of the same length, got {steps.shape} and {losses.shape}")
    fig, ax = plt.subplots(figsize=(6.0, 3.2))
    ax.plot(steps, losses, marker="o", ms=3, label="training loss (mean over each interval)")
    if sigma is not None:
        ax.axhline((float(sigma) / 255) ** 2, color="#444444", ls="--", lw=1.2,
                   label=f"returning the noisy input: (σ/255)² at σ={float(sigma):g}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE loss")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curve(record: Mapping, sigma: float = 25.0, references: Mapping[str, float] | None = None,
                        label: str = "book's U-Net"):
    """Test-set PSNR against training minutes (a ``training_curve`` results file), with horizontal lines.

    Parameters
    ----------
    record : mapping
        ``results.load("training_curve")``: rows of ``step``, ``minutes`` and ``psnr`` by sigma
        (and ``run``, the index of the run in a training of several: a dotted line marks where
        each later run starts).
    sigma : float
        Which noise level to draw (one of the record's ``sigmas``).
    references : mapping of str to float, optional
        Named PSNRs at that noise level, drawn as horizontal lines (BM3D, a published network...).
    label : str
        Legend entry of the curve.
    """
    import matplotlib.pyplot as plt

    _check_record(record, ("rows", "dataset"), "a training_curve results file")
    key = f"{float(sigma):g}"
    if not record["rows"] or key not in record["rows"][0]["psnr"]:
        raise ValueError(f"the training curve has no rows at sigma {key}")
    minutes = np.array([r["minutes"] for r in record["rows"]], float)
    psnr = np.array([r["psnr"][key] for r in record["rows"]], float)
    fig, ax = plt.subplots(figsize=(6.0, 3.4))
    ax.plot(minutes, psnr, marker="o", ms=4, label=label)
    rows = record["rows"]
    restarts = [rows[k - 1]["minutes"] for k in range(1, len(rows)) if rows[k].get("run", 0) != rows[k - 1].get("run", 0)]
    for k, at in enumerate(restarts):  # a later run continued from the weights of the one before (--init)
        ax.axvline(at, color="#888888", ls=":", lw=1.0, label="next run starts (--init)" if k == 0 else None)
    styles = ["--", ":", "-.", (0, (5, 1))]
    for (name, value), style in zip((references or {}).items(), styles * 4):
        ax.axhline(float(value), color="#444444", ls=style, lw=1.2, label=f"{name}: {float(value):.2f} dB")
    ax.set_xlabel("training time (minutes)")
    ax.set_ylabel(f"mean PSNR (dB), {record['dataset'].upper()}, σ = {key}")
    ax.set_xlim(0, float(minutes.max()) * 1.03)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_denoised(clean, noisy, outputs: Mapping[str, np.ndarray], sigma: float, size: float = 2.2):
    """Clean, noisy and denoised images (top row) and the noise (bottom row).

    The top row shows the clean image, the noisy image and each output, titled with its PSNR
    (:func:`nnimaging.evaluate.psnr_8bit`). The bottom row shows, under the noisy image, the
    true noise ``noisy - clean`` and, under each output, the noise the model removed,
    ``noisy - output``; both on the scale ``±3 sigma``, mid-gray for zero. Image structure in
    a removed-noise panel is detail the model took away with the noise.

    Parameters
    ----------
    clean, noisy : (H, W) float arrays, values in [0, 1] (noisy: not clipped)
    outputs : dict of name -> (H, W) float array
        Denoised images.
    sigma : float > 0
        Noise level on the 0..255 scale (for the noise scale).
    """
    import matplotlib.pyplot as plt

    from .evaluate import psnr_8bit

    clean, noisy = float_image("clean", clean, keep_dtype=True), float_image("noisy", noisy, keep_dtype=True)
    if noisy.shape != clean.shape:
        raise ValueError(f"noisy has shape {noisy.shape}, clean has shape {clean.shape}")
    outs = {name: float_image(name, out, keep_dtype=True) for name, out in outputs.items()}
    for name, out in outs.items():
        if out.shape != clean.shape:
            raise ValueError(f"output {name!r} has shape {out.shape}, expected {clean.shape}")
    scale = 3 * positive_number("sigma", sigma, SIGMA_UNIT) / 255
    ncols = 2 + len(outs)
    fig, axes = plt.subplots(2, ncols, figsize=(size * ncols, 2 * size + 0.6), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    top = [(clean, "clean"), (noisy, f"noisy: {psnr_8bit(noisy, clean):.2f} dB")]
    top += [(out, f"{name}: {psnr_8bit(out, clean):.2f} dB") for name, out in outs.items()]
    for ax, (im, title) in zip(axes[0], top):
        ax.imshow(np.clip(im, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    bottom = [(noisy - clean, "true noise")] + [(noisy - out, f"removed by {name}") for name, out in outs.items()]
    for ax, (im, title) in zip(axes[1, 1:], bottom):
        ax.imshow(im, cmap="gray", vmin=-scale, vmax=scale, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    axes[1, 0].text(0.5, 0.5, f"noise panels:\ngray = 0,\nblack/white = ∓3σ\n(σ={float(sigma):g})",
                    ha="center", va="center", fontsize=9, transform=axes[1, 0].transAxes)
    fig.tight_layout()
    return fig


def plot_sigma_sweep(record: Mapping, trained_sigma: float | None = 25.0, blind_range=(0.0, 55.0)):
    """PSNR against the noise level for each model of ``results.load("sigma_sweep")``.

    Two panels: the mean PSNR (with the noisy input, dashed) and the gain over the noisy
    input. A dotted line marks ``trained_sigma`` (the level of the non-blind model) and a
    shaded band ``blind_range`` (the levels the blind models were trained on).
    """
    import matplotlib.pyplot as plt

    _check_record(record, ["sigmas", "noisy_psnr", "models"], "sigma_sweep")
    sigmas = np.asarray(record["sigmas"], float)
    noisy = np.asarray(record["noisy_psnr"], float)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    for ax in (ax1, ax2):
        if blind_range is not None:
            ax.axvspan(*blind_range, color="#dddddd", alpha=0.5, lw=0, label="blind training range")
        if trained_sigma is not None:
            ax.axvline(trained_sigma, color="#444444", ls=":", lw=1.2, label=f"σ={trained_sigma:g}")
    ax1.plot(sigmas, noisy, "k--", lw=1.2, label="noisy input")
    for name, curve in record["models"].items():
        psnr = np.asarray(curve["psnr"], float)
        ax1.plot(sigmas, psnr, marker="o", ms=3, label=name)
        ax2.plot(sigmas, psnr - noisy, marker="o", ms=3, label=name)
    ax2.axhline(0, color="k", lw=0.8)
    ax1.set_ylabel("mean PSNR (dB)")
    ax2.set_ylabel("gain over the noisy input (dB)")
    for ax in (ax1, ax2):
        ax.set_xlabel("noise level σ (0..255 scale)")
        ax.set_xlim(0, sigmas.max() + 2)
    ax1.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the demo
def noise_level_frame(model, clean, sigma: float, seed: int = 0) -> dict:
    """Noise one image at ``sigma``, denoise it, and measure what happened.

    Parameters
    ----------
    model : torch.nn.Module
        A denoiser with the book's call convention (see :func:`nnimaging.evaluate.denoise`).
    clean : (H, W) float array in [0, 1]
    sigma : float > 0
        Noise level, 0..255 scale.
    seed : int
        Noise seed (:func:`nnimaging.degrade.add_gaussian_noise`).

    Returns
    -------
    dict
        ``noisy`` (H, W) the noisy image; ``denoised`` (H, W) the model output clipped to
        [0, 1]; ``removed`` (H, W) the removed noise ``noisy - output`` (output not
        clipped) **in units of sigma/255**, so that its standard deviation is 1 when the
        model removes exactly the noise level; ``noisy_psnr``, ``denoised_psnr``, ``gain``
        (dB, :func:`nnimaging.evaluate.psnr_8bit`); ``removed_std`` (std of ``removed``);
        ``sigma``.
    """
    from .degrade import add_gaussian_noise
    from .evaluate import denoise, psnr_8bit

    clean = float_image("clean", clean, keep_dtype=True)
    sigma = positive_number("sigma", sigma, SIGMA_UNIT)
    noisy = add_gaussian_noise(clean, sigma, seed)
    output = denoise(model, noisy)
    removed = (noisy.astype(np.float64) - output.astype(np.float64)) * 255.0 / sigma
    noisy_psnr, denoised_psnr = psnr_8bit(noisy, clean), psnr_8bit(output, clean)
    return {
        "noisy": noisy,
        "denoised": np.clip(output, 0.0, 1.0),
        "removed": removed,
        "noisy_psnr": noisy_psnr,
        "denoised_psnr": denoised_psnr,
        "gain": denoised_psnr - noisy_psnr,
        "removed_std": float(removed.std()),
        "sigma": sigma,
    }


@register
def noise_level_demo(image: str = DEMO_IMAGE["image"], top: int = DEMO_IMAGE["top"], left: int = DEMO_IMAGE["left"],
                     size: int = DEMO_IMAGE["size"], models: Sequence[str] = DEMO_MODELS, seed: int = 0,
                     weights_dir: str | None = None) -> Demo:
    """Noisy, denoised and removed noise for a noise level (slider) and a shipped model (choice).

    Every combination (the noise levels :data:`DEMO_SIGMAS` and the ``models``) is computed in
    Python with :func:`noise_level_frame` and embedded in the page; ``weights_dir`` is passed to
    :func:`nnimaging.weightstore.load_pretrained`.
    """
    from .weightstore import load_pretrained

    if not models:
        raise ValueError("models must name at least one shipped denoiser")
    clean = data.crop(image, top, left, size)
    loaded = {name: load_pretrained(name, weights_dir=weights_dir) for name in models}

    def compute(model, sigma):  # each result is remembered by the demo (Demo.result)
        return noise_level_frame(loaded[model], clean, sigma, seed)

    return Demo(
        "A denoiser at different noise levels",
        [Slider("sigma", *DEMO_SIGMAS, 25, label="noise level σ", fmt="d"),
         Choice("model", tuple(models), models[0], label="model")],
        compute,
        [Panel([Image("noisy", 0.0, 1.0)], title="noisy: {noisy_psnr:.2f} dB", axes=False),
         Panel([Image("denoised", 0.0, 1.0)], title="{model}: {denoised_psnr:.2f} dB",
               axes=False),
         Panel([Image("removed", -3.0, 3.0)], title="removed noise: std {removed_std:.2f}σ",
               axes=False)],
        alt=(f"Three {size} by {size} pixel images for the chosen noise level and model: the noisy crop of "
             f"{image} with its PSNR, the model's denoised image with its PSNR, and the noise the "
             "model removed, shown on a scale of plus or minus three noise standard deviations with its "
             "standard deviation in units of sigma. Where the model removes more than noise, image edges "
             "appear in the removed-noise panel."),
        ncols=3, height=250)
