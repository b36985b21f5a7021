"""Import every module that registers demos, so :func:`nnimaging.demo.build` finds them all."""

from . import approximation, architectures, autodiff, convfigures, denoising, encdec, optimizers, published, restoration  # noqa: F401
