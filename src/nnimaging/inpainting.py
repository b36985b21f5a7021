"""Filling in hidden pixels of digits: an MLP against a small CNN (chapter 3).

Chapter 3 trains an MLP to inpaint MNIST digits with its own loop, then asks whether a
convolutional network does better at the same task. This module is that measurement:
:func:`mask_pixels` hides pixels (the chapter's draw), :func:`inpainting_cnn` is the small
convolutional encoder-decoder, and :func:`train_inpainter` trains any model on exactly the
batches and masks that its seed draws, so that two models are compared on equal terms.
"""

from __future__ import annotations

import torch
from torch import nn

from . import _checks

__all__ = ["mask_pixels", "inpainting_cnn", "train_inpainter"]


def mask_pixels(images: torch.Tensor, keep: float, generator: torch.Generator) -> torch.Tensor:
    """Keep each pixel with probability ``keep`` and set the others to 0.

    The same draw as the chapter's ``mask_pixels``: one ``torch.rand(images.shape, generator=...)``,
    a pixel kept where that number is below ``keep``.

    Parameters
    ----------
    images : (B, P) float tensor
        One flattened image per row, values in [0, 1].
    keep : float
        Probability of keeping a pixel, in (0, 1].
    generator : torch.Generator
        Source of the random mask (advanced by ``B * P`` numbers).

    Returns
    -------
    (B, P) tensor of the dtype of ``images``
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError(f"images must be a floating-point torch tensor, got {type(images).__name__}")
    keep = _checks.positive_number("keep", keep)
    if keep > 1:
        raise _checks.UsageError(f"keep must be a probability in (0, 1], got {keep!r}")
    return images * (torch.rand(images.shape, generator=generator) < keep)


def inpainting_cnn(channels=(8, 16, 32), side: int = 28) -> nn.Sequential:
    """A small convolutional encoder-decoder that maps flattened images to flattened images.

    Input and output ``(B, side * side)``, like the chapter's MLP. Inside, the image
    ``(B, 1, side, side)`` passes a 3x3 convolution to ``channels[0]`` maps, two 4x4 convolutions
    of stride 2 (to ``channels[1]`` maps at ``side / 2`` and ``channels[2]`` at ``side / 4``), two
    4x4 transposed convolutions of stride 2 back up, and a 3x3 convolution to one map, with a ReLU
    after every layer but the last. Every weight is shared across pixel positions.

    Parameters
    ----------
    channels : (int, int, int)
        Feature maps at full, half and quarter resolution.
    side : int
        Image height and width, a multiple of 4.

    Returns
    -------
    torch.nn.Sequential
        In float32 (call ``.double()`` for float64), initialised from torch's global generator.
    """
    if len(channels) != 3:
        raise _checks.UsageError(f"channels must be three positive integers, got {channels!r}")
    c1, c2, c3 = (_checks.positive_int("channels", c) for c in channels)
    side = _checks.positive_int("side", side)
    if side % 4:
        raise _checks.UsageError(f"side must be a multiple of 4 (two stride-2 layers), got {side}")
    return nn.Sequential(
        nn.Unflatten(1, (1, side, side)),
        nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(),
        nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(c2, c3, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(c3, c2, 4, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(c1, 1, 3, padding=1),
        nn.Flatten(),
    )


def train_inpainter(model: nn.Module, images: torch.Tensor, keep: float, epochs: int,
                    batch_size: int, lr: float, seed: int = 0) -> list[float]:
    """Train ``model`` in place to fill in masked pixels, with Adam on ``0.5 ||y - y_hat||^2``.

    The chapter's loop with Adam instead of plain gradient descent: one ``torch.Generator``
    seeded with ``seed`` draws each epoch's order (``torch.randperm``) and then each batch's mask
    (:func:`mask_pixels`), so two models trained with the same seed see the same batches and the
    same masks. The loss of a batch is ``0.5 * ((model(x) - y) ** 2).sum(dim=1).mean()``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(B, P)`` to ``(B, P)``, in the dtype of ``images``.
    images : (N, P) float tensor
        Complete training images, one per row, values in [0, 1].
    keep : float
        Probability of keeping a pixel in the input, in (0, 1].
    epochs, batch_size : int
        Passes over the images and images per step, >= 1.
    lr : float
        Adam's learning rate, > 0.
    seed : int
        Seeds the order and the masks.

    Returns
    -------
    list of float
        The loss of every step.
    """
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim != 2:
        raise _checks.UsageError("images must be a floating-point torch tensor of shape (N, P), got "
                                 f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}")
    epochs = _checks.positive_int("epochs", epochs)
    batch_size = _checks.positive_int("batch_size", batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=_checks.positive_number("lr", lr))
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        for batch in torch.randperm(len(images), generator=gen).split(batch_size):
            y = images[batch]
            x = mask_pixels(y, keep, gen)
            y_hat = model(x)
            if y_hat.shape != y.shape:
                raise ValueError(f"model must return the shape of its input {tuple(y.shape)}, "
                                 f"got {tuple(y_hat.shape)}")
            loss = 0.5 * ((y_hat - y) ** 2).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses
