"""Training throughput of the book's denoisers on this machine: float32 against bf16 autocast.

    python benchmarks/train_throughput.py [--steps 6] [--threads N]

Times a few training steps (forward, loss, backward, Adam) of each network on random patches, in
float32 and under bf16 autocast with channels_last, and says which one ``--amp auto`` picks here
(bf16 only where the CPU has native bf16 instructions: ``nnimaging.trainrun.cpu_has_native_bf16``).
The README's figures come from this script.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from nnimaging import models, trainrun

CASES = [  # name, architecture, constructor arguments, batch, patch side (the training recipes)
    ("unet-denoise", "unet", {}, 16, 64),
    ("dncnn 17 x 64 (paper)", "dncnn", {"depth": 17, "width": 64}, 32, 40),
    ("dncnn 17 x 32 (shipped)", "dncnn", {"depth": 17, "width": 32}, 32, 40),
]


def patches_per_second(architecture, kwargs, batch, patch, bf16, steps):
    torch.manual_seed(0)
    model = models.build_model(architecture, **kwargs)
    x = torch.rand(batch, 1, patch, patch)
    if bf16:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    for i in range(steps + 2):  # two warm-up steps
        if i == 2:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.mse_loss(model(x + 0.1 * torch.randn_like(x)).float(), x)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return batch * steps / (time.perf_counter() - start)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    native = trainrun.cpu_has_native_bf16()
    print(f"{torch.get_num_threads()} threads; native bf16: {native}; --amp auto picks {'bf16' if native else 'float32'}")
    for name, arch, kwargs, batch, patch in CASES:
        fp32 = patches_per_second(arch, kwargs, batch, patch, False, a.steps)
        bf16 = patches_per_second(arch, kwargs, batch, patch, True, a.steps)
        print(f"{name:24s} {patch}x{patch} patches/s: float32 {fp32:6.1f}, bf16 {bf16:6.1f} ({bf16 / fp32:.2f}x)")


if __name__ == "__main__":
    main()
