"""nnimaging: the helper package of *Neural Networks for Computational Imaging*.

One import gives readers everything::

    import nnimaging as nni

    nni.setup()                       # seeds and reproducible figures (top of every chapter)
    nni.weightstore.load_pretrained("dncnn-s25")
    nni.convfigures.convolution_demo()
    nni.demo.Slider("w", 1, 10, 1, 2)

``nni`` is the book's alias for the package. Its modules (``nni.models``, ``nni.data``,
``nni.demo`` ...) are imported the first time they are used (PEP 562), so ``import nnimaging``
itself stays light: it does not import PyTorch. ``dir(nni)`` lists them all. The chapters
import what they need from the modules, which are split by concern:

* :mod:`nnimaging.notebook` -- ``setup()``: seeds and reproducible figures (top of every chapter)
* :mod:`nnimaging.data` -- the datasets (MNIST, Train400, BSD68, Set12), verified by checksum
* :mod:`nnimaging.demo` -- interactive figures that stay live on the static website
* :mod:`nnimaging.metrics` -- PSNR and friends
* topic modules (``approximation``, ``autodiff``, ``conv``, ``models`` ...) -- the math of each chapter

README.md lists every module with what it holds.
"""

import importlib as _importlib
import pkgutil as _pkgutil

from .notebook import setup, show_source

__version__ = "0.1.0"
__all__ = ["setup", "show_source", "__version__"]

_modules: tuple[str, ...] | None = None


def _public_modules() -> tuple[str, ...]:
    """The package's public modules and subpackages (names without a leading underscore).

    Read from the package's folder, so a new module is reachable as ``nni.NAME`` without being
    listed here.
    """
    global _modules
    if _modules is None:
        _modules = tuple(sorted(m.name for m in _pkgutil.iter_modules(__path__)
                                if not m.name.startswith("_")))
    return _modules


def __getattr__(name: str):
    """``nnimaging.NAME`` imports the module ``nnimaging.NAME`` the first time it is used."""
    if name in _public_modules():
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(
        f"module {__name__!r} has no attribute {name!r}; it has {', '.join(__all__)} and the "
        f"modules {', '.join(_public_modules())}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_public_modules()))
