"""Small inputs shared by the tests of chapters 6 and 7: synthetic digits and scenes, and skips
for tests that need a dataset (imported as a plain module, like ``twincheck``)."""

from __future__ import annotations

import numpy as np
import pytest

from nnimaging.data import load_images, load_mnist


def _have(loader) -> bool:
    try:
        loader()
    except Exception:  # noqa: BLE001 - any reason the data cannot be read means: skip
        return False
    return True


needs_set12 = pytest.mark.skipif(not _have(lambda: load_images("set12")), reason="Set12 is not available")
needs_mnist = pytest.mark.skipif(not _have(lambda: load_mnist("heldout")), reason="MNIST is not available")


def blobs(n=96, seed=0):
    """Digit-like images: one or two Gaussian blobs on a black 28x28 background, in [0, 1]."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:28, 0:28]
    out = np.zeros((n, 28, 28))
    for i in range(n):
        for _ in range(rng.integers(1, 3)):
            r, c = rng.uniform(8, 20, size=2)
            out[i] += np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * rng.uniform(2, 4) ** 2))
    return np.clip(out, 0, 1).astype(np.float32)


def scene(n=64):
    """A smooth pattern with a bright box: an image with edges and texture, no dataset needed."""
    rows, cols = np.mgrid[0:n, 0:n]
    box = (rows > n // 3) & (rows < 2 * n // 3) & (cols > n // 4) & (cols < 3 * n // 4)
    return 0.4 + 0.3 * np.sin(cols / 5) * np.cos(rows / 7) + 0.2 * box
