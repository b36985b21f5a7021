"""Train the book's denoisers: ``python -m nnimaging.train {dncnn,unet} [options]``.

The recipe follows DnCNN (Zhang et al., IEEE TIP 2017): 40x40 patches cropped at random
from the 400 training images (Train400), each flipped/rotated by one of the 8 symmetries
of the square, white Gaussian noise at a fixed level (``--sigma 25``, 0..255 scale) or at
a level drawn per patch (blind, ``--sigma-range 0 55``), MSE loss between the denoised
patch and the clean one, Adam.

Written to be fast on a GPU without a DataLoader: the whole training set sits on the
device as one tensor; patch positions, symmetries and noise are drawn there at every
step (a single gather per batch). bf16 autocast and channels-last on CUDA, optional
``torch.compile`` (``--compile``). Under ``torchrun`` each process trains on its own
patches (seed offset by rank) with DistributedDataParallel; only rank 0 writes.

This module is the recipe as the book teaches it: patch sampling with the 8 symmetries
(:class:`PatchSampler`), one training step (:func:`training_step`), the learning-rate schedule
(:func:`lr_at`), and :func:`train`, written as those steps. Around them: the settings and
command-line flags in :mod:`nnimaging.trainconfig`; the run machinery (processes, device, log,
time budget, signals, export) in :mod:`nnimaging.trainrun`; the checkpoint's format in
:mod:`nnimaging.checkpoint`. Import their names from those modules.

Outputs in ``--out`` (default ``runs/ARCH``):

* ``checkpoint.pt``: model, optimizer, step, random generator states, settings
  (``--resume`` continues from it; loadable with ``torch.load(..., weights_only=True)``);
* ``log.jsonl``: one JSON object per line (``step``, ``loss``, ``lr``, ``patches_per_s``,
  ``elapsed_s``; ``val_psnr`` when validated);
* at the end, ``NAME.pt`` (the weights) and ``manifest_entry.json``; ``--export NAME``
  also writes them into the package's ``weights/`` directory and its manifest.

Examples::

    python -m nnimaging.train dncnn --sigma 25 --out runs/dncnn-s25 --minutes 9
    python -m nnimaging.train dncnn --depth 20 --sigma-range 0 55 --out runs/dncnn-b
    torchrun --nproc-per-node 2 -m nnimaging.train dncnn --sigma 25
"""

from __future__ import annotations

import contextlib
import math
import sys

import numpy as np
import torch
import torch.nn.functional as F

from . import _checks, checkpoint, data, models
from ._checks import UsageError
from .degrade import Degradation
from .evaluate import denoise, psnr_8bit
from .trainconfig import SCHEDULES, config_from_args, init_state
from .trainconfig import settings as _settings
from .trainrun import Processes, Run, choose_device, use_bf16

__all__ = [
    "dihedral",
    "dihedral_offsets",
    "PatchSampler",
    "lr_at",
    "training_step",
    "validation_psnr",
    "train",
    "main",
]

# ----------------------------------------------------------------------------------------
# augmentation and patch sampling
# ----------------------------------------------------------------------------------------


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes of ``x``.

    ``k`` in 0..3 rotates by ``k`` quarter turns; ``k`` in 4..7 transposes first (a flip
    about the diagonal) and then rotates by ``k - 4`` quarter turns.
    """
    if not 0 <= int(k) < 8:
        raise ValueError(f"k must be in 0..7, got {k}")
    if k >= 4:
        x = x.transpose(-1, -2)
    return torch.rot90(x, int(k) % 4, dims=(-2, -1))


def dihedral_offsets(patch_size: int) -> torch.Tensor:
    """Source (row, column) of every output pixel of a patch, for each of the 8 symmetries.

    Returns
    -------
    (8, 2, p, p) int64 tensor ``T`` such that ``dihedral(P, k)[a, b] == P[T[k, 0, a, b], T[k, 1, a, b]]``
    for any ``p x p`` patch ``P``. Cropping and augmenting then become one gather.
    """
    p = int(patch_size)
    rows, cols = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    grid = torch.stack([rows, cols])  # (2, p, p): each pixel's own coordinates
    return torch.stack([dihedral(grid, k) for k in range(8)])


def _pack_images(images, patch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (H, W) images of possibly different sizes into one zero-padded (N, Hmax, Wmax) tensor."""
    arrays = [np.asarray(im) for im in images]
    if not arrays:
        raise ValueError("no training images")
    for i, a in enumerate(arrays):
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"training image {i}: expected an (H, W) float array in [0, 1], got {a.shape} {a.dtype}")
        if min(a.shape) < patch_size:
            raise ValueError(f"training image {i} of shape {a.shape} is smaller than the patch size {patch_size}")
        if a.min() < 0 or a.max() > 1:
            raise ValueError(f"training image {i}: values must be in [0, 1], got [{a.min():.3g}, {a.max():.3g}]")
    hmax = max(a.shape[0] for a in arrays)
    wmax = max(a.shape[1] for a in arrays)
    packed = torch.zeros(len(arrays), hmax, wmax, dtype=torch.float32)
    for i, a in enumerate(arrays):
        packed[i, : a.shape[0], : a.shape[1]] = torch.from_numpy(a.astype(np.float32))
    sizes = torch.tensor([a.shape for a in arrays], dtype=torch.int64)
    return packed, sizes


class PatchSampler:
    """Random training patches drawn on the device where the images are stored.

    Parameters
    ----------
    images : sequence of (H, W) float arrays in [0, 1]
        Training images (sizes may differ; each must be at least ``patch_size`` on both sides).
    patch_size : int
        Side of the square patches.
    device : torch.device
        Where the images are kept (the GPU during training).
    augment : bool
        Apply one of the 8 flips/rotations (uniformly at random) to each patch.
    """

    def __init__(self, images, patch_size: int, device="cpu", augment: bool = True):
        self.patch_size = int(patch_size)
        packed, sizes = _pack_images(images, self.patch_size)
        self.device = torch.device(device)
        self.data = packed.to(self.device)
        self.flat = self.data.view(-1)
        self.heights = sizes[:, 0].to(self.device)
        self.widths = sizes[:, 1].to(self.device)
        self.offsets = dihedral_offsets(self.patch_size).to(self.device)
        self.augment = bool(augment)

    def __len__(self) -> int:
        return self.data.shape[0]

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A batch of clean patches, ``(batch_size, 1, p, p)`` float32 on the device."""
        n, hmax, wmax = self.data.shape
        p, dev = self.patch_size, self.device
        index = torch.randint(0, n, (batch_size,), generator=generator, device=dev)
        span_y = self.heights[index] - p + 1
        span_x = self.widths[index] - p + 1
        # floor(u * span) for u uniform in [0, 1): a uniform integer in 0 .. span-1 per patch
        y = torch.minimum((torch.rand(batch_size, generator=generator, device=dev) * span_y).long(), span_y - 1)
        x = torch.minimum((torch.rand(batch_size, generator=generator, device=dev) * span_x).long(), span_x - 1)
        if self.augment:
            k = torch.randint(0, 8, (batch_size,), generator=generator, device=dev)
        else:
            k = torch.zeros(batch_size, dtype=torch.long, device=dev)
        table = self.offsets[k]  # (B, 2, p, p)
        rows = y.view(-1, 1, 1) + table[:, 0]
        cols = x.view(-1, 1, 1) + table[:, 1]
        flat_index = index.view(-1, 1, 1) * (hmax * wmax) + rows * wmax + cols
        return self.flat[flat_index].unsqueeze(1)


# ----------------------------------------------------------------------------------------
# learning-rate schedule
# ----------------------------------------------------------------------------------------


def lr_at(step: int, total_steps: int, lr: float, lr_final: float, schedule: str, warmup_steps: int = 0) -> float:
    """Learning rate used for optimisation step ``step`` (0-based) of ``total_steps``.

    * ``cosine``: from ``lr`` to ``lr_final`` along half a cosine;
    * ``exp``: geometric decay from ``lr`` to ``lr_final`` (DnCNN's log-spaced rates);
    * ``step``: ``lr``, divided by 10 after 50 % and again after 75 % of the steps;
    * ``constant``: ``lr``.

    A linear warm-up over the first ``warmup_steps`` steps multiplies any of them.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    t = min(max(step / max(total_steps, 1), 0.0), 1.0)
    if schedule == "cosine":
        rate = lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * t))
    elif schedule == "exp":
        rate = lr * (lr_final / lr) ** t
    elif schedule == "step":
        rate = lr * (0.1 if t >= 0.5 else 1.0) * (0.1 if t >= 0.75 else 1.0)
    else:
        rate = lr
    if warmup_steps and step < warmup_steps:
        rate *= (step + 1) / warmup_steps
    return rate



# ----------------------------------------------------------------------------------------
# one training step and the validation score
# ----------------------------------------------------------------------------------------


def training_step(model, optimizer, sampler: PatchSampler, degradation: Degradation, batch_size: int, sigma,
                  generator: torch.Generator | None = None, autocast=None, channels_last: bool = False) -> torch.Tensor:
    """One step of the recipe: fresh patches, their degradation, the MSE to the clean patches, Adam.

    Parameters
    ----------
    model : nn.Module
        The network being trained (in train mode).
    optimizer : torch.optim.Optimizer
        Its optimizer, learning rate already set for this step.
    sampler : PatchSampler
        Draws ``batch_size`` clean patches (on the sampler's device).
    degradation : nnimaging.degrade.Degradation
        What the network sees: noise, or blur then noise (and perhaps a Wiener deconvolution).
    batch_size : int
        Patches in this step.
    sigma : float or (low, high)
        Noise standard deviation on the 0..255 scale, or a range: one level drawn uniformly per
        patch (blind training).
    generator : torch.Generator, optional
        Source of the patches' positions and symmetries, noise levels and noise.
    autocast : context manager, optional
        E.g. ``torch.autocast("cuda", dtype=torch.bfloat16)``; the loss is computed in float32.
    channels_last : bool
        Feed the network channels-last tensors (faster with bf16 and on GPUs).

    Returns
    -------
    The loss, a 0-d tensor detached from the graph (reading it with ``.item()`` waits for the device).
    """
    clean = sampler.sample(batch_size, generator)
    if isinstance(sigma, (tuple, list)):
        low, high = sigma
        sigma = low + (high - low) * torch.rand(batch_size, generator=generator, device=sampler.device)
    noisy = degradation.batch(clean, sigma, generator)
    if channels_last:
        noisy = noisy.contiguous(memory_format=torch.channels_last)
    with autocast if autocast is not None else contextlib.nullcontext():
        denoised = model(noisy)
    loss = F.mse_loss(denoised.float(), clean)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def validation_psnr(model, noisy_images, clean_images) -> float | None:
    """Mean PSNR (dB, 8-bit protocol of :mod:`nnimaging.evaluate`) of ``model`` on fixed noisy images.

    Evaluated in eval mode (BatchNorm's running statistics), then back to train mode; None
    without images.
    """
    if not clean_images:
        return None
    model.eval()
    scores = [psnr_8bit(denoise(model, noisy), clean) for noisy, clean in zip(noisy_images, clean_images)]
    model.train()
    return float(np.mean(scores))


def _load_training_images(cfg: dict, images, val_images):
    """Training images and (clean) validation images following the settings."""
    if images is None:
        if cfg["data_dir"] is not None:
            images = data.load_image_dir(cfg["data_dir"])
        else:
            images = data.load_images(cfg["dataset"])
    images = list(images)
    if val_images is None:
        if cfg["val_dir"] is not None:
            val_images = data.load_image_dir(cfg["val_dir"])[: cfg["val_count"]]
        elif cfg["val"] == "none":
            val_images = []
        elif cfg["val"] == "heldout":
            if len(images) <= cfg["val_count"]:
                raise UsageError(f"val_count {cfg['val_count']}: cannot hold out {cfg['val_count']} of "
                                 f"{len(images)} training images (expected fewer than {len(images)})")
            images, val_images = images[: -cfg["val_count"]], images[-cfg["val_count"] :]
        else:
            val_images = data.load_images(cfg["val"])[: cfg["val_count"]]
    return images, list(val_images)


# ----------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------


def train(config: dict | None = None, images=None, val_images=None) -> dict:
    """Train a denoiser; returns a summary (and writes checkpoint, log and weights to ``out``).

    Parameters
    ----------
    config : dict, optional
        Settings overriding :data:`nnimaging.trainconfig.DEFAULTS` (same names as the command-line flags, with
        ``_`` for ``-``; the model's constructor arguments go in ``model_kwargs``).
    images : sequence of (H, W) float arrays in [0, 1], optional
        Training images; default: ``config["data_dir"]`` or ``nnimaging.data.load_images(dataset)``.
    val_images : sequence of (H, W) float arrays in [0, 1], optional
        Clean validation images (noise is added with a fixed seed); default from ``config["val"]``.

    Returns
    -------
    dict
        ``step``, ``total_steps``, ``completed``, ``final_loss`` (mean of the last logging
        interval), ``val_psnr`` (last validation, dB), ``out`` (directory), ``weights`` (path
        of the final weights or None), ``entry`` (manifest entry or None).
    """
    # settings, processes and device; a run to resume is read and compared before any work
    cfg = _settings(config)
    procs = Processes.start(cfg["device"])
    device = choose_device(cfg["device"])
    use_amp = use_bf16(cfg["amp"], device)
    local_batch = procs.local_batch(cfg["batch_size"])
    ckpt = checkpoint.read_for_resume(cfg["out"], cfg)

    # data: random patches of the training images, fixed degraded versions of the validation images
    train_images, val_clean = _load_training_images(cfg, images, val_images)
    sampler = PatchSampler(train_images, cfg["patch_size"], device, cfg["augment"])
    degradation = Degradation(cfg["blur"], cfg["wiener_nsr"])
    val_noisy = [degradation.image(im, cfg["val_sigma"], cfg["val_seed"]) for im in val_clean]

    # the model, Adam, and a random generator per process (each draws its own patches)
    torch.manual_seed(cfg["seed"])
    model = models.build_model(cfg["architecture"], **cfg["model_kwargs"]).to(device)
    channels_last = device.type == "cuda" or use_amp
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg["init"] is not None and ckpt is None:  # a resumed run has these weights' successors already
        model.load_state_dict(init_state(cfg["init"], model, device))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    generator = torch.Generator(device=device)
    generator.manual_seed(cfg["seed"] + 1_000_003 * procs.rank + 1)

    # the run around the loop: resume, log, time budget, checkpoints, signals (nnimaging.trainrun)
    run = Run(cfg, procs, device, model, optimizer, generator,
              validate=lambda: validation_psnr(model, val_noisy, val_clean))
    run.resume(ckpt)
    net = procs.wrap(model, device, cfg["compile"])  # what the loop calls: DDP and torch.compile as set
    sigma = cfg["sigma_range"] if cfg["sigma_range"] is not None else cfg["sigma"]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp)

    # the loop: the learning rate of this step, one step, then logging and checkpoints when due
    with run:
        net.train()
        while run.continues():
            rate = lr_at(run.step, run.total, cfg["lr"], cfg["lr_final"], cfg["schedule"], cfg["warmup_steps"])
            for group in optimizer.param_groups:
                group["lr"] = rate
            loss = training_step(net, optimizer, sampler, degradation, local_batch, sigma, generator,
                                 autocast, channels_last)
            if run.after_step(loss, rate):  # the time budget is spent
                break
    return run.finish()  # final checkpoint, validation, weights and manifest entry (--export)


# ----------------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------------


def main(argv=None) -> dict:
    """Command-line entry point (see the module docstring)."""
    return train(config_from_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    _checks.run_cli(main, prog="python -m nnimaging.train")
