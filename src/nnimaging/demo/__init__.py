"""Interactive figures that stay live on the static website.

One :class:`Demo` describes an interactive figure by three things:

* its **controls** (:class:`Slider`, :class:`Choice`), each with a finite list of positions;
* a **compute** function ``compute(**params) -> dict`` that turns the control values into
  named numbers and arrays (the math being taught);
* a declarative **figure**: :class:`Panel` objects holding marks (:class:`Line`,
  :class:`Points`, :class:`VLine`, :class:`HLine`, :class:`Text`, :class:`Bars`,
  :class:`Image`, :class:`Grid`) that name entries of the computed dict.

Displayed in a notebook, a demo is an ipywidgets panel whose sliders redraw a matplotlib
figure through the Python ``compute`` (live with a kernel: Jupyter, Binder, Colab). The same
cell output also carries a self-contained HTML version (``text/html``): a JSON description of
the figure plus a small JavaScript runtime (``runtime.js``) that draws the figure as SVG and
redraws it when a slider moves, with no kernel and no network. The book's HTML builder is
configured to pick that representation, Jupyter front ends pick the widget.

In the browser the figure data come from one of two sources:

* ``js=JsTwin(...)``: a JavaScript twin of ``compute`` runs in the page, so every combination
  of slider positions is reachable. The browser tests check that the twin returns the same
  numbers as the Python function (to 1e-6).
* no twin: every combination of positions is computed in Python when the cell runs and the
  results ("frames") are embedded in the page. For step-through figures and trained models at a
  few settings; limited to :data:`MAX_FRAMES` combinations.

Demos are made by factory functions registered with :func:`register`, so that tests can
rebuild any demo found on a page from its name and arguments.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import math
import re
import string
from dataclasses import asdict, dataclass, field
from importlib import resources
from typing import Any, Callable, Sequence

import numpy as np

__all__ = [
    "Demo", "Slider", "Choice", "Panel", "Line", "Points", "VLine", "HLine", "Text", "Bars",
    "Image", "Grid", "JsTwin", "register", "registry", "build", "MAX_FRAMES", "runtime_js",
]

MAX_FRAMES = 2000
"""Most combinations of control positions a frames-mode demo may precompute."""

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]
"""Colour cycle shared by the matplotlib and the browser renderer (matplotlib's tab10)."""


# --------------------------------------------------------------------------- controls
def _fmt_ok(spec: str) -> bool:
    """Format specs both renderers implement: '', 'd', '.Nf', '.Ne', '.N%'."""
    return spec == "" or spec == "d" or re.fullmatch(r"\.\d+[fe%]", spec) is not None


def format_value(value: Any, spec: str = "") -> str:
    """Format one value the way the browser runtime does (a subset of Python's format spec)."""
    if not _fmt_ok(spec):
        raise ValueError(f"unsupported format spec {spec!r}: use '', 'd', '.Nf', '.Ne' or '.N%'")
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if spec == "d":
        return str(int(round(float(value))))
    if spec == "":
        v = float(value)
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    return format(float(value), spec)


def _check_template(template: str | None) -> None:
    if template is None:
        return
    for _, key, spec, _ in string.Formatter().parse(template):
        if key is not None and not _fmt_ok(spec or ""):
            raise ValueError(f"template {template!r}: unsupported format spec {spec!r} "
                             "(use '', 'd', '.Nf', '.Ne' or '.N%')")


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


@dataclass(frozen=True)
class Slider:
    """A slider over evenly spaced positions ``min, min + step, ..., max``.

    ``value`` is snapped to the nearest position. ``fmt`` formats the read-out.
    """

    name: str
    min: float
    max: float
    step: float
    value: float
    label: str | None = None
    fmt: str = ""

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"slider name must be a Python identifier, got {self.name!r}")
        if not self.step > 0 or not self.max > self.min:
            raise ValueError(f"slider {self.name!r}: need min < max and step > 0, "
                             f"got min={self.min}, max={self.max}, step={self.step}")
        n = (self.max - self.min) / self.step
        if abs(n - round(n)) > 1e-6:
            raise ValueError(f"slider {self.name!r}: (max - min) must be a multiple of step")
        if not self.min <= self.value <= self.max:
            raise ValueError(f"slider {self.name!r}: value {self.value} outside [{self.min}, {self.max}]")
        if not _fmt_ok(self.fmt):
            raise ValueError(f"slider {self.name!r}: unsupported fmt {self.fmt!r}")

    @property
    def positions(self) -> list:
        """All values the slider can take, rounded to 10 decimals (ints stay ints)."""
        n = int(round((self.max - self.min) / self.step)) + 1
        values = [round(self.min + i * self.step, 10) for i in range(n)]
        if all(float(v).is_integer() for v in (self.min, self.max, self.step)):
            values = [int(v) for v in values]
        return values

    @property
    def index(self) -> int:
        return int(np.argmin([abs(v - self.value) for v in self.positions]))

    def spec(self) -> dict:
        return {"kind": "slider", "name": self.name, "label": self.label or self.name,
                "values": self.positions, "index": self.index, "fmt": self.fmt}


@dataclass(frozen=True)
class Choice:
    """A set of named options (shown as a drop-down); ``value`` must be one of them."""

    name: str
    options: tuple
    value: Any
    label: str | None = None

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ValueError(f"choice name must be a Python identifier, got {self.name!r}")
        object.__setattr__(self, "options", tuple(self.options))
        if self.value not in self.options:
            raise ValueError(f"choice {self.name!r}: value {self.value!r} not in {self.options}")

    @property
    def positions(self) -> list:
        return list(self.options)

    @property
    def index(self) -> int:
        return self.options.index(self.value)

    def spec(self) -> dict:
        return {"kind": "choice", "name": self.name, "label": self.label or self.name,
                "values": self.positions, "index": self.index, "fmt": ""}


# --------------------------------------------------------------------------- marks
@dataclass(frozen=True)
class Line:
    """A polyline through ``(result[x], result[y])``; NaN values break the line."""

    x: str
    y: str
    label: str | None = None
    color: str | None = None
    dash: bool = False
    width: float = 2.0
    type: str = field(default="line", init=False)


@dataclass(frozen=True)
class Points:
    """Markers at ``(result[x], result[y])``."""

    x: str
    y: str
    label: str | None = None
    color: str | None = None
    size: float = 5.0
    type: str = field(default="points", init=False)


@dataclass(frozen=True)
class VLine:
    """A vertical line at ``x``: a number, or the name of a scalar in the result."""

    x: float | str
    label: str | None = None
    color: str = "#444444"
    dash: bool = True
    type: str = field(default="vline", init=False)


@dataclass(frozen=True)
class HLine:
    """A horizontal line at ``y``: a number, or the name of a scalar in the result."""

    y: float | str
    label: str | None = None
    color: str = "#444444"
    dash: bool = True
    type: str = field(default="hline", init=False)


@dataclass(frozen=True)
class Text:
    """Text from a template such as ``"max error {err:.3f}"``.

    ``x``, ``y`` are axes fractions (``coords="axes"``, 0..1 from the lower left) or data
    coordinates (``coords="data"``); either may name a scalar in the result.
    """

    template: str
    x: float | str = 0.02
    y: float | str = 0.95
    coords: str = "axes"
    color: str = "#000000"
    size: float = 11.0
    anchor: str = "start"  # start, middle, end
    type: str = field(default="text", init=False)

    def __post_init__(self):
        _check_template(self.template)
        if self.coords not in ("axes", "data"):
            raise ValueError(f"coords must be 'axes' or 'data', got {self.coords!r}")


@dataclass(frozen=True)
class Bars:
    """Vertical bars of height ``result[y]`` at positions ``result[x]``."""

    x: str
    y: str
    label: str | None = None
    color: str | None = None
    width: float = 0.8
    type: str = field(default="bars", init=False)


@dataclass(frozen=True)
class Image:
    """A 2-D array ``result[key]`` shown as a grayscale image between ``vmin`` and ``vmax``."""

    key: str
    vmin: float = 0.0
    vmax: float = 1.0
    type: str = field(default="image", init=False)


@dataclass(frozen=True)
class Grid:
    """A small matrix ``result[key]`` drawn as cells with their numbers in them.

    ``highlight`` names a boolean matrix of the same shape whose true cells are filled with
    ``color``; NaN entries are left blank (values not computed yet).
    """

    key: str
    fmt: str = ".1f"
    highlight: str | None = None
    color: str = "#ffd54f"
    type: str = field(default="grid", init=False)

    def __post_init__(self):
        if not _fmt_ok(self.fmt):
            raise ValueError(f"unsupported fmt {self.fmt!r}")


Mark = Line | Points | VLine | HLine | Text | Bars | Image | Grid


@dataclass(frozen=True)
class Panel:
    """One set of axes. ``axes=False`` hides axes, for images and grids.

    ``title`` may be a template filled from the result. ``xlim``/``ylim`` fix the ranges
    (recommended: a figure whose axes jump while a slider moves is hard to read).
    """

    marks: Sequence[Mark]
    title: str | None = None
    xlabel: str | None = None
    ylabel: str | None = None
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None
    axes: bool = True
    legend: bool = False

    def __post_init__(self):
        object.__setattr__(self, "marks", tuple(self.marks))
        _check_template(self.title)


@dataclass(frozen=True)
class JsTwin:
    """JavaScript twin of a compute function: ``entry`` is a function defined in ``source``.

    It receives one object of parameters and the runtime's helper library (``lib``: linspace,
    sigmoid, ...), and returns an object with the same keys as the Python function.
    """

    source: str
    entry: str

    @classmethod
    def from_package(cls, filename: str, entry: str) -> "JsTwin":
        """Load the twin from a ``.js`` file shipped in ``nnimaging/demo/``."""
        text = resources.files("nnimaging.demo").joinpath(filename).read_text(encoding="utf-8")
        if not re.search(rf"function\s+{re.escape(entry)}\s*\(", text):
            raise ValueError(f"{filename} defines no function {entry!r}")
        return cls(source=text, entry=entry)


# --------------------------------------------------------------------------- JSON encoding
def _to_jsonable(value: Any, *, images: bool = False) -> Any:
    """Convert compute() output to JSON values: arrays to (nested) lists, NaN to None.

    With ``images=True``, 2-D float arrays are kept as arrays (the caller encodes images).
    """
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(value, np.ndarray):
        if value.dtype == bool:
            return value.tolist()
        arr = value.astype(float)
        out = arr.tolist()
        if not np.all(np.isfinite(arr)):
            out = json.loads(json.dumps(out).replace("NaN", "null").replace("-Infinity", "null")
                             .replace("Infinity", "null"))
        return out
    if hasattr(value, "detach"):  # torch tensor
        return _to_jsonable(value.detach().cpu().numpy())
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    raise TypeError(f"compute() returned a value of type {type(value).__name__}; "
                    "expected numbers, strings, bools or arrays")


def png_data_uri(image: np.ndarray, vmin: float = 0.0, vmax: float = 1.0) -> str:
    """Encode a 2-D array as a grayscale PNG data URI (deterministic bytes)."""
    from PIL import Image as PILImage

    arr = np.asarray(image, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"image must be a 2-D array, got shape {arr.shape}")
    scaled = np.clip((arr - vmin) / (vmax - vmin), 0, 1)
    u8 = np.round(np.nan_to_num(scaled) * 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(u8, mode="L").save(buf, format="PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_RUNTIME_CACHE: dict[str, str] = {}


def runtime_js() -> str:
    """The browser runtime that draws demos (``nnimaging/demo/runtime.js``)."""
    if "js" not in _RUNTIME_CACHE:
        _RUNTIME_CACHE["js"] = resources.files("nnimaging.demo").joinpath("runtime.js").read_text(
            encoding="utf-8")
    return _RUNTIME_CACHE["js"]


# --------------------------------------------------------------------------- the demo
class Demo:
    """An interactive figure; see the module docstring.

    Parameters
    ----------
    name : str
        Registry name of the factory that made it (``"chapter.topic"``).
    title : str
        Shown above the controls.
    controls : sequence of Slider or Choice
    compute : callable
        ``compute(**params) -> dict`` of numbers, strings and arrays.
    panels : sequence of Panel
    alt : str
        Text alternative describing what the figure shows (screen readers, no-JS readers).
    js : JsTwin, optional
        Browser twin of ``compute``; without it the demo precomputes every combination.
    ncols : int, optional
        Panels per row (default: all in one row).
    height : int
        Height of one row of panels in pixels (the width follows the page).
    args : dict
        JSON-serialisable arguments of the factory, recorded for tests.
    """

    def __init__(self, name: str, title: str, controls: Sequence[Slider | Choice],
                 compute: Callable[..., dict], panels: Sequence[Panel], *, alt: str,
                 js: JsTwin | None = None, ncols: int | None = None, height: int = 280,
                 args: dict | None = None):
        if not alt or not alt.strip():
            raise ValueError("every demo needs alt text describing the figure")
        names = [c.name for c in controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique, got {names}")
        self.name, self.title, self.alt = name, title, alt
        self.controls = tuple(controls)
        self.compute = compute
        self.panels = tuple(panels)
        self.js = js
        self.ncols = ncols or len(self.panels)
        self.height = height
        self.args = dict(args or {})
        if js is None and self.n_combinations > MAX_FRAMES:
            raise ValueError(f"demo {name!r} has {self.n_combinations} combinations of control "
                             f"positions; precomputing more than {MAX_FRAMES} is too much for a "
                             "page: give it a JsTwin so the browser computes")

    # ---- plain Python use
    @property
    def defaults(self) -> dict:
        """The initial control values."""
        return {c.name: c.positions[c.index] for c in self.controls}

    @property
    def n_combinations(self) -> int:
        return math.prod(len(c.positions) for c in self.controls)

    def __call__(self, **params) -> dict:
        """Compute the figure data for ``params`` (missing ones take their initial value)."""
        unknown = set(params) - {c.name for c in self.controls}
        if unknown:
            raise TypeError(f"demo {self.name!r} has no control(s) {sorted(unknown)}")
        return self.compute(**{**self.defaults, **params})

    # ---- the static, browser-side representation
    def spec(self) -> dict:
        """The JSON description the browser runtime draws."""
        spec = {
            "name": self.name, "args": self.args, "title": self.title, "alt": self.alt,
            "controls": [c.spec() for c in self.controls],
            "panels": [{**{k: v for k, v in asdict(p).items() if k != "marks"},
                        "marks": [asdict(m) for m in p.marks]} for p in self.panels],
            "layout": {"ncols": self.ncols, "height": self.height},
            "colors": COLORS,
        }
        if self.js is not None:
            spec["js"] = {"source": self.js.source, "entry": self.js.entry}
        else:
            spec["frames"] = [self._frame(dict(zip([c.name for c in self.controls], combo)))
                              for combo in itertools.product(*(c.positions for c in self.controls))]
        return spec

    def _frame(self, params: dict) -> dict:
        result = self.compute(**params)
        image_keys = {m.key: m for p in self.panels for m in p.marks if isinstance(m, Image)}
        frame = {}
        for key, value in result.items():
            if key in image_keys:
                m = image_keys[key]
                frame[key] = png_data_uri(np.asarray(value), m.vmin, m.vmax)
            else:
                frame[key] = _to_jsonable(value)
        return frame

    def to_html(self) -> str:
        """Self-contained HTML: the JSON description, then the runtime that mounts it."""
        payload = json.dumps(self.spec(), separators=(",", ":"), sort_keys=True, allow_nan=False)
        payload = payload.replace("</", "<\\/")
        digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        return (
            f'<div class="nnimaging-demo" data-demo="{self.name}" data-digest="{digest}">'
            f'<script type="application/json" class="nnimaging-demo-spec">{payload}</script>'
            f'<noscript><p>Interactive figure (needs JavaScript): {_escape(self.alt)}</p></noscript>'
            "</div>\n"
            f"<script>{runtime_js()}\nnnimagingDemo.mountAll();</script>"
        )

    # ---- the live, kernel-side representation
    def widget(self):
        """An ipywidgets box: controls that redraw a matplotlib figure through ``compute``."""
        from .live import LiveDemo

        return LiveDemo(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        widget = self.widget()
        bundle = widget.mimebundle()
        bundle["text/html"] = self.to_html()
        bundle["text/plain"] = f"Interactive figure: {self.title}"
        return bundle

    def __repr__(self) -> str:
        return f"Demo({self.name!r}, controls={[c.name for c in self.controls]})"


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


# --------------------------------------------------------------------------- registry
registry: dict[str, Callable[..., Demo]] = {}
"""Demo factories by name; :func:`build` makes a demo from a name and its arguments."""


def register(name: str) -> Callable[[Callable[..., Demo]], Callable[..., Demo]]:
    """Register a demo factory under ``name`` (the factory's Demo must carry that name)."""

    def decorator(factory: Callable[..., Demo]) -> Callable[..., Demo]:
        if name in registry and registry[name] is not factory:
            raise ValueError(f"demo name {name!r} is registered twice")
        registry[name] = factory
        return factory

    return decorator


def build(name: str, args: dict | None = None) -> Demo:
    """Make the registered demo ``name`` with factory arguments ``args``."""
    import nnimaging.demos  # noqa: F401  (registers every demo of the book)

    if name not in registry:
        raise KeyError(f"no demo named {name!r}; known: {sorted(registry)}")
    return registry[name](**(args or {}))
