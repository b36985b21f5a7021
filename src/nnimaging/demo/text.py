"""The one text formatter of the demos, in Python; ``runtime.js`` implements the same rule.

Every number a demo writes (slider read-outs, drop-down labels, titles, :class:`Text` marks,
:class:`Grid` cells) goes through :func:`format_value`, on the kernel's matplotlib figure and, in
``formatValue`` of ``runtime.js``, on the static page's SVG. The rule, shared by both:

* numbers are IEEE doubles (Python ints and NumPy scalars are converted first, as JSON does);
* the format specs are ``''``, ``'d'``, ``'.Nf'``, ``'.Ne'`` and ``'.N%'``; ``'.Nf'``, ``'.Ne'``
  and ``'.N%'`` give Python's ``format(value, spec)``, which rounds the **exact binary value**
  half to even: ``0.125`` at ``'.2f'`` is ``0.12`` (a tie, to the even digit), ``0.375`` is
  ``0.38``, and ``2.675`` is ``2.67`` (its double lies below the tie);
* ``'d'`` is ``'.0f'`` (``2.5`` gives ``2``, ``3.5`` gives ``4``);
* ``''`` writes an integer value below 10^16 as an integer (``2.0`` gives ``2``) and any other
  number as Python's ``repr`` (shortest digits that read back the same double; exponent from
  10^16 and below 10^-4: ``1e+16``, ``1.5e-05``);
* a result that rounds to zero has no minus sign (``-0.001`` at ``'.2f'`` gives ``0.00``);
* booleans give ``True`` and ``False`` (whatever the spec), strings themselves, ``None`` and NaN
  an empty string (a value not computed yet), infinities ``inf`` and ``-inf``.

``tests/test_demo.py`` checks this table in Python and ``tests/test_twins.py`` checks that the
browser writes the same text for it and for thousands of random values.
"""

from __future__ import annotations

import math
import re
import string
from typing import Any

import numpy as np

__all__ = ["FORMAT_SPECS", "format_value", "fill_template", "check_spec", "check_template"]

FORMAT_SPECS = "'', 'd', '.Nf', '.Ne' or '.N%'"
"""The format specs both renderers implement, as error messages name them."""

_SPEC = re.compile(r"|d|\.\d{1,2}[fe%]")
_NEGATIVE_ZERO = re.compile(r"-[0.]*(?:e[+-]\d+)?%?")


def spec_ok(spec: str) -> bool:
    """Whether both renderers implement the format spec ``spec`` (at most 99 digits)."""
    return isinstance(spec, str) and _SPEC.fullmatch(spec) is not None


def check_spec(spec: str, what: str = "format spec") -> None:
    """Raise ``ValueError`` unless ``spec`` is one of :data:`FORMAT_SPECS`."""
    if not spec_ok(spec):
        raise ValueError(f"unsupported {what} {spec!r}: use {FORMAT_SPECS}")


def format_value(value: Any, spec: str = "") -> str:
    """Write ``value`` with ``spec`` by the rule of the module docstring (the browser's rule too).

    Parameters
    ----------
    value : number, bool, str or None
    spec : str
        ``''``, ``'d'``, ``'.Nf'``, ``'.Ne'`` or ``'.N%'``.

    Returns
    -------
    str
    """
    check_spec(spec)
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if value is None:
        return ""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"can only format numbers, booleans, strings and None, got "
                        f"{type(value).__name__}") from None
    if math.isnan(v):
        return ""
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if spec == "":
        return str(int(v)) if v.is_integer() and abs(v) < 1e16 else repr(v)
    text = format(v, ".0f" if spec == "d" else spec)
    return text[1:] if _NEGATIVE_ZERO.fullmatch(text) else text


def check_template(template: str | None) -> None:
    """Raise ``ValueError`` if a ``{key:spec}`` field of ``template`` has a spec the browser lacks."""
    if template is None:
        return
    for _, key, spec, _ in string.Formatter().parse(template):
        if key is not None and not spec_ok(spec or ""):
            raise ValueError(f"template {template!r}: unsupported format spec {spec!r} "
                             f"(use {FORMAT_SPECS})")


def fill_template(template: str, values: dict) -> str:
    """Replace ``{key:spec}`` fields of ``template`` with formatted entries of ``values``."""
    out = []
    for literal, key, spec, _ in string.Formatter().parse(template):
        out.append(literal)
        if key is not None:
            if key not in values:
                raise KeyError(f"template {template!r} names {key!r}, which compute() did not return")
            out.append(format_value(values[key], spec or ""))
    return "".join(out)
