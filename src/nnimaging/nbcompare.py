"""How a fresh run of a chapter is compared with its stored outputs (nbval, through ``conftest.py``).

A chapter's outputs are exact where the computation is exact (formulas, shapes, counts, closed
forms): those compare character for character. What a convolution or a matrix product computes in
float32 is not exact: the libraries pick their summation order from the processor's instruction set,
its cache sizes and the number of threads, so another machine rounds the last bit differently.
These rules decide when such a difference is one a reader cannot see:

* **text** (printed output, ``text/plain``, and values glued into the prose with myst-nb's
  ``glue``, which chapters round to the digits they state): every number may differ by at most one unit of its
  last printed digit (``0.0409`` against ``0.0410``); all other characters are identical. A number
  printed with more digits than the computation can keep (a rounding error such as ``3.0e-08``) is
  a bug of the chapter: it should state a bound instead.
* **figures** (``image/svg+xml``): coordinates may differ by at most :data:`SVG_TOLERANCE` points
  (1/144 inch); the text is identical; embedded raster images compare pixel by pixel (below).
* **live demos** (``text/html``): numbers in the demo's description may differ by a relative
  :data:`HTML_RTOL`; embedded images compare pixel by pixel.
* **raster images** (PNG, embedded in a figure or a demo): same size; at most
  :data:`PIXEL_SHARE` of the pixels differ, each by at most :data:`PIXEL_LEVELS` of 255 levels.

Training loops amplify last-bit differences far beyond these bounds; the chapters run them in
float64 (see the chapters' text), which leaves the amplified differences far below them.
"""

from __future__ import annotations

import base64
import io
import re

import numpy as np

__all__ = ["compare", "HTML_RTOL", "SVG_TOLERANCE", "PIXEL_LEVELS", "PIXEL_SHARE"]

SVG_TOLERANCE = 0.5
"""Largest difference of an SVG coordinate, in points (1/72 inch)."""
HTML_RTOL = 1e-3
"""Largest relative difference of a number in a live demo's description.

Trained-model demos embed numbers computed by float32 networks of 17 to 20 layers; measured on SSE4
against AVX2 convolutions: 3.95153 against 3.95106 (1.2e-4). Their images compare pixel by pixel.
"""
PIXEL_LEVELS = 2
"""Largest difference of one pixel of an embedded PNG, in levels of 255."""
PIXEL_SHARE = 0.005
"""Largest share of the pixels of an embedded PNG that may differ at all."""

_PNG = re.compile(r"data:image/png;base64,([A-Za-z0-9+/]+=*)")
_NUMBER = re.compile(r"(?<![\w.#/])([-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)")
GLUE_KIND = "application/papermill.record/text/plain"
"""The MIME type of a number glued into the prose with ``myst_nb.glue`` (compared as text)."""

_TEXT_KINDS = ("stdout", "stderr", "text/plain", "text/markdown", "text/latex", GLUE_KIND)


def _unit(token: str) -> float:
    """One unit of the last printed digit of a number written as ``token``."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exponent or 0) - decimals)


def _numbers_agree(kind: str, a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if x == y:
        return True
    if kind == "image/svg+xml":
        return abs(x - y) <= SVG_TOLERANCE
    if kind == "text/html":
        return abs(x - y) <= HTML_RTOL * max(abs(x), abs(y), 1e-3)
    return abs(x - y) <= 1.000001 * max(_unit(a), _unit(b))


def _png_pixels(b64: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        return np.asarray(im.convert("RGBA"), dtype=np.int16)


def _pngs_agree(a: str, b: str) -> str | None:
    x, y = _png_pixels(a), _png_pixels(b)
    if x.shape != y.shape:
        return f"embedded image of size {x.shape[1]}x{x.shape[0]} became {y.shape[1]}x{y.shape[0]}"
    diff = np.abs(x - y).max(axis=-1)
    share = float(np.mean(diff > 0))
    if diff.max() > PIXEL_LEVELS or share > PIXEL_SHARE:
        return (f"embedded image differs: {share:.2%} of pixels (at most {PIXEL_SHARE:.2%}), "
                f"by up to {int(diff.max())} levels (at most {PIXEL_LEVELS})")
    return None


def compare(kind: str, reference: str, fresh: str) -> str | None:
    """``None`` if ``fresh`` reproduces ``reference`` under the rules above, else what differs.

    ``kind`` is the output's MIME type (or ``stdout``/``stderr``); both strings are already
    sanitized. Outputs of other kinds (JSON of widgets, say) must be identical.
    """
    if reference == fresh:
        return None
    if kind not in _TEXT_KINDS and kind not in ("image/svg+xml", "text/html"):
        return f"{kind} output differs"
    ref_pngs, fresh_pngs = _PNG.findall(reference), _PNG.findall(fresh)
    if len(ref_pngs) != len(fresh_pngs):
        return f"{len(ref_pngs)} embedded images became {len(fresh_pngs)}"
    for a, b in zip(ref_pngs, fresh_pngs):
        if a != b and (problem := _pngs_agree(a, b)):
            return problem
    ref_parts = _NUMBER.split(_PNG.sub("PNG", reference))
    fresh_parts = _NUMBER.split(_PNG.sub("PNG", fresh))
    if len(ref_parts) != len(fresh_parts):
        return "the text differs (not only in its numbers)"
    for i, (a, b) in enumerate(zip(ref_parts, fresh_parts)):
        if i % 2 == 0 and a != b:
            return f"the text differs: {a[-40:]!r} became {b[-40:]!r}"
        if i % 2 == 1 and not _numbers_agree(kind, a, b):
            return f"number {a} became {b} ({kind})"
    return None


def compare_outputs(reference: list, fresh: list, sanitize=lambda s: s, skip=()) -> str | None:
    """Compare two lists of a cell's outputs as nbval groups them (by MIME type or stream name).

    ``reference`` and ``fresh`` hold nbformat outputs; streams are expected as nbval passes them
    (``{"output_type": "stream", "stdout": text}``). ``skip`` lists keys not compared (nbval's
    ``skip_compare``). Returns ``None`` if every output agrees under :func:`compare`.
    """
    def grouped(outputs):
        groups: dict[str, list] = {}
        for output in outputs:
            for key, value in output.items():
                if key in skip or key == "output_type":
                    continue
                items = value.items() if key == "data" else [(key, value)]
                for kind, v in items:
                    if kind not in skip:
                        groups.setdefault(kind, []).append(sanitize(v) if isinstance(v, str) else v)
        return groups

    ref, new = grouped(reference), grouped(fresh)
    if set(ref) != set(new):
        return f"output kinds {sorted(ref)} became {sorted(new)}"
    for kind in ref:
        if len(ref[kind]) != len(new[kind]):
            return f"{len(ref[kind])} {kind} outputs became {len(new[kind])}"
        for a, b in zip(ref[kind], new[kind]):
            if not (isinstance(a, str) and isinstance(b, str)):
                if a != b:
                    return f"{kind} output differs"
            elif (problem := compare(kind, a, b)) is not None:
                return problem
    return None
