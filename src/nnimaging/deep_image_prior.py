"""The deep image prior (chapter 7): a randomly initialised U-Net fitted to one noisy image.

:func:`deep_image_prior` runs the fit (Ulyanov et al., 2018), :func:`deep_image_prior_example`
runs it on a Set12 crop and remembers the result, which the demo :func:`deep_image_prior_demo`
steps through; :func:`plot_dip_curves` draws the PSNR and loss curves.
``python -m nnimaging.experiments deep-image-prior`` stores a long run in
``nnimaging/results/deep_image_prior.json``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import float_image as _image, positive_int as _int, positive_number as _positive
from .data import crop
from .degrade import add_gaussian_noise
from .demo import Demo, Image, Line, Panel, Slider, VLine, register
from .metrics import psnr
from .models import UNet

__all__ = ["deep_image_prior", "deep_image_prior_example", "deep_image_prior_demo", "plot_dip_curves"]


def deep_image_prior(noisy, clean=None, steps: int = 2000, depth: int = 3, width: int = 16,
                     lr: float = 0.01, upsample: str = "bilinear", input_scale: float = 0.1,
                     input_noise: float = 0.0, seed: int = 0, snapshot_every: int = 100,
                     device="cpu", progress: bool = False, dtype=torch.float64) -> dict:
    """Deep image prior (Ulyanov et al., 2018): fit a random U-Net to one noisy image.

    A :class:`~nnimaging.models.UNet` (``residual=False``, batch norm) with random weights
    maps a fixed random code ``z`` (uniform in ``[0, input_scale)``, the image's size) to an
    image; Adam changes the weights, never ``z``, to minimise the mean squared difference to
    the noisy image. Nothing is learned from other images: the network's structure is the
    only prior. The fit reproduces the image's content before its noise, so the output is
    cleanest after some iterations and gets noisier as the network starts fitting the noise;
    stopping early is the method.

    Parameters
    ----------
    noisy : (H, W) float array, values around [0, 1]
        The only observation.
    clean : (H, W) float array, optional
        Ground truth for the PSNR curve (not used for fitting).
    steps : int >= 0
        Number of Adam updates.
    depth, width, upsample
        U-Net settings (``UNet(depth, width, upsample=...)``).
    lr : float > 0
        Adam learning rate.
    input_scale : float > 0
        Range of the uniform random code.
    input_noise : float >= 0
        Standard deviation of a fresh Gaussian perturbation added to the code at every
        iteration (the paper uses 1/30 for denoising): it slows down the fitting of the noise
        and raises the best PSNR. The outputs recorded are those of the perturbed code.
    seed : int
        Seed of the weights and the code (results reproduce on the same device and software).
    snapshot_every : int >= 1
        Keep the output after every ``snapshot_every`` updates (and after the last one).
    device : str or torch.device
        ``"cpu"`` or e.g. ``"cuda"``: longer runs are just bigger arguments on a GPU.
    progress : bool
        Print loss (and PSNR) at every snapshot.
    dtype : torch.dtype
        Precision of the fit; float64 by default, as in :func:`nnimaging.autoencoders.train_autoencoder`: hundreds of
        updates amplify float32's processor-dependent rounding into visible differences.

    Returns
    -------
    dict
        ``"loss"``: (steps + 1,) float64 array, ``loss[t]`` the MSE to ``noisy`` after ``t``
        updates; ``"psnr"``: (steps + 1,) float64 array of the PSNR (dB) of the output,
        clipped to [0, 1], against ``clean`` after ``t`` updates (``None`` without
        ``clean``); ``"snapshots"``: {t: (H, W) float32 output clipped to [0, 1]} for
        ``t = 0, snapshot_every, 2 snapshot_every, ...`` and ``t = steps``;
        ``"best_iteration"``: argmax of ``psnr`` (``None`` without ``clean``);
        ``"best_psnr"``; ``"settings"``: the arguments, for a results file.
    """
    y = _image("noisy", noisy)
    x = None if clean is None else _image("clean", clean)
    if x is not None and x.shape != y.shape:
        raise ValueError(f"clean must have the shape of noisy {y.shape}, got {x.shape}")
    steps = _int("steps", steps, 0)
    snapshot_every = _int("snapshot_every", snapshot_every, 1)
    lr, input_scale = _positive("lr", lr), _positive("input_scale", input_scale)
    input_noise = float(input_noise)
    if not math.isfinite(input_noise) or input_noise < 0:
        raise ValueError(f"input_noise must be a finite number >= 0, got {input_noise!r}")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(depth=depth, width=width, channels=1, upsample=upsample, batch_norm=True,
                   residual=False)
    gen = torch.Generator().manual_seed(seed)
    z = (torch.rand(1, 1, *y.shape, generator=gen) * input_scale).to(device=device, dtype=dtype)
    net = net.to(device=device, dtype=dtype).train()
    target = torch.from_numpy(y.astype(np.float32))[None, None].to(device=device, dtype=dtype)
    reference = (None if x is None
                 else torch.from_numpy(x.astype(np.float32))[None, None].to(device=device, dtype=dtype))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    losses, errors, snapshots = [], [], {}
    for t in range(steps + 1):
        if input_noise > 0:
            out = net(z + input_noise * torch.randn(z.shape, generator=gen).to(device=device, dtype=dtype))
        else:
            out = net(z)
        loss = F.mse_loss(out, target)
        estimate = out.detach().clamp(0, 1)
        losses.append(loss.detach())
        if reference is not None:
            errors.append(F.mse_loss(estimate, reference))
        if t % snapshot_every == 0 or t == steps:
            snapshots[t] = estimate[0, 0].cpu().float().numpy()
            if progress:
                extra = ("" if reference is None
                         else f"  PSNR {10 * math.log10(1 / errors[-1].item()):.2f} dB")
                print(f"iteration {t:5d}  loss {loss.item():.6f}{extra}", flush=True)
        if t == steps:
            break
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    loss_curve = torch.stack(losses).double().cpu().numpy()
    psnr_curve = best = best_psnr = None
    if reference is not None:
        mse = torch.stack(errors).double().cpu().numpy()
        psnr_curve = 10 * np.log10(1.0 / np.maximum(mse, 1e-20))
        best = int(np.argmax(psnr_curve))
        best_psnr = float(psnr_curve[best])
    settings = {"steps": steps, "depth": depth, "width": width, "lr": lr, "upsample": upsample,
                "input_scale": input_scale, "input_noise": input_noise, "seed": seed,
                "snapshot_every": snapshot_every, "device": str(device)}
    return {"loss": loss_curve, "psnr": psnr_curve, "snapshots": snapshots,
            "best_iteration": best, "best_psnr": best_psnr, "settings": settings}


def deep_image_prior_example(image: str = "set12/02", top: int = 64, left: int = 96, size: int = 32,
                             sigma: float = 25.0, noise_seed: int = 0, steps: int = 20,
                             snapshot_every: int = 5, depth: int = 2, width: int = 8,
                             lr: float = 0.01, seed: int = 0) -> dict:
    """A Set12 crop, its noisy version and :func:`deep_image_prior` fitted to it (remembered).

    ``clean = data.crop(image, top, left, size)``, ``noisy = add_gaussian_noise(clean,
    sigma, noise_seed)``, then ``deep_image_prior(noisy, clean, steps=..., ...)``. The result
    is remembered for the same settings, so the demo :func:`deep_image_prior_demo` and the
    chapter share one fit; do not modify it. The defaults are a quick preview; the chapter
    passes its own settings.

    Returns
    -------
    dict with ``clean``, ``noisy`` ((size, size) float64 arrays) and ``run`` (the dict of
    :func:`deep_image_prior`).
    """
    return _deep_image_prior_example(
        str(image), _int("top", top, 0), _int("left", left, 0), _int("size", size, 1),
        float(sigma), int(noise_seed), _int("steps", steps, 0),
        _int("snapshot_every", snapshot_every, 1), _int("depth", depth, 1), _int("width", width, 1),
        float(lr), int(seed))


@functools.lru_cache(maxsize=2)
def _deep_image_prior_example(image, top, left, size, sigma, noise_seed, steps, snapshot_every,
                              depth, width, lr, seed) -> dict:
    clean = crop(image, top, left, size).astype(np.float64)
    noisy = add_gaussian_noise(clean, sigma, seed=noise_seed).astype(np.float64)
    run = deep_image_prior(noisy, clean, steps=steps, depth=depth, width=width, lr=lr,
                           seed=seed, snapshot_every=snapshot_every)
    return {"clean": clean, "noisy": noisy, "run": run}


@register("deep_image_prior.fit")
def deep_image_prior_demo(image: str = "set12/02", top: int = 64, left: int = 96, size: int = 32,
                          sigma: float = 25.0, noise_seed: int = 0, steps: int = 20,
                          snapshot_every: int = 5, depth: int = 2, width: int = 8,
                          lr: float = 0.01, seed: int = 0, curve_every: int = 5) -> Demo:
    """Step through a deep-image-prior fit: the output at each snapshot and the PSNR curve.

    Arguments as in :func:`deep_image_prior_example` (whose remembered result it shows);
    ``steps`` must be a multiple of ``snapshot_every``. ``curve_every`` thins the PSNR
    curve stored with every frame.
    """
    steps, snapshot_every = _int("steps", steps, 1), _int("snapshot_every", snapshot_every, 1)
    curve_every = _int("curve_every", curve_every, 1)
    if steps % snapshot_every:
        raise ValueError(f"steps ({steps}) must be a multiple of snapshot_every "
                         f"({snapshot_every}) so that every slider position has a snapshot")
    ex = deep_image_prior_example(image, top, left, size, sigma, noise_seed, steps,
                                  snapshot_every, depth, width, lr, seed)
    run = ex["run"]
    iters = np.arange(0, steps + 1, curve_every)
    curve = np.round(run["psnr"][iters], 3)
    noisy_db = round(psnr(ex["noisy"], ex["clean"]), 3)
    best = run["best_iteration"]

    def compute(iteration):
        t = int(iteration)
        return {"noisy": ex["noisy"], "clean": ex["clean"], "output": run["snapshots"][t],
                "t": iters.astype(float), "curve": curve, "now": float(t),
                "db": float(round(run["psnr"][t], 3)), "noisy_db": noisy_db}

    top_db = float(np.ceil(max(curve.max(), noisy_db) / 5) * 5 + 2)
    return Demo(
        title="Deep image prior: a random U-Net fitted to one noisy image",
        controls=[Slider("iteration", 0, steps, snapshot_every,
                         snapshot_every * round(best / snapshot_every), label="iteration",
                         fmt="d")],
        compute=compute,
        panels=[Panel([Image("noisy", 0.0, 1.0)], title="noisy ({noisy_db:.2f} dB)", axes=False),
                Panel([Image("clean", 0.0, 1.0)], title="clean (not used)", axes=False),
                Panel([Image("output", 0.0, 1.0)], title="output ({db:.2f} dB)", axes=False),
                Panel([Line("t", "curve"), VLine("now", color="#d62728")],
                      title="PSNR (dB) to clean", xlabel="iteration",
                      xlim=(0.0, float(steps)), ylim=(5.0, top_db))],
        alt=("Four panels: a noisy crop of a Set12 photograph, the clean crop, the output of a "
             "randomly initialised U-Net after the number of fitting iterations chosen with "
             "the slider, and the PSNR of that output against the clean crop over the "
             "iterations, with a red line at the chosen iteration. The output starts as a "
             "smooth blob, becomes a clean version of the image, and later reproduces the "
             "noise as well: the PSNR rises to a peak and then falls."),
        ncols=4, height=230,
    )


def plot_dip_curves(run: dict, noise_variance: float, marks: dict | None = None):
    """PSNR against the clean image and loss against the noisy one, per iteration.

    Parameters
    ----------
    run : dict
        A result of :func:`deep_image_prior` with a PSNR curve.
    noise_variance : float
        Drawn as a horizontal line on the loss panel (the MSE of the clean image to the noisy
        one, in expectation).
    marks : dict of label -> iteration, optional
        Iterations marked on both panels.
    """

    import matplotlib.pyplot as plt  # here, not at the top: the experiments' fit needs no figures

    if run.get("psnr") is None:
        raise ValueError("run has no PSNR curve: call deep_image_prior with a clean image")
    t = np.arange(len(run["loss"]))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(9.0, 3.2))
    ax.plot(t, run["psnr"], lw=1.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("PSNR to the clean image (dB)")
    bx.semilogy(t, run["loss"], lw=1.5)
    bx.axhline(noise_variance, color="#444444", ls="--", lw=1.2, label="noise variance σ²")
    bx.set_xlabel("iteration")
    bx.set_ylabel("loss: MSE to the noisy image")
    for (label, it), colour in zip((marks or {}).items(), ["#d62728", "#2ca02c", "#9467bd"]):
        ax.plot(it, run["psnr"][it], "o", color=colour, label=f"{label} ({it})")
        bx.plot(it, run["loss"][it], "o", color=colour)
    ax.legend(fontsize=8, loc="lower right")
    bx.legend(fontsize=8)
    fig.tight_layout()
    return fig
