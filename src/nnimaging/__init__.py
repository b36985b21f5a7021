"""nnimaging: the helper package of *Neural Networks for Computational Imaging*.

Chapters import what they need from the modules, which are split by concern:

* :mod:`nnimaging.notebook` -- ``setup()``: seeds and reproducible figures (top of every chapter)
* :mod:`nnimaging.data` -- the datasets (MNIST, Train400, BSD68, Set12), verified by checksum
* :mod:`nnimaging.demo` -- interactive figures that stay live on the static website
* :mod:`nnimaging.metrics` -- PSNR and friends
* topic modules (``approximation``, ``autodiff``, ``conv``, ``models`` ...) -- the math of each chapter
"""

from .notebook import setup, show_source

__version__ = "0.1.0"
__all__ = ["setup", "show_source", "__version__"]
