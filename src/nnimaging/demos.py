"""Every demo of the book in :data:`nnimaging.demo.registry`: importing this module fills it.

It calls :func:`nnimaging.demo.discover`, which imports each module of the package that
registers a demo (found by reading the sources: no list to keep up to date). Tests and scripts
may call ``discover()`` themselves; this module is kept for code that imports it.
"""

from .demo import discover, registry

discover(__package__)

__all__ = ["registry"]
