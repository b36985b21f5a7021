"""The parts of a demo's figure: controls, marks, panels and JavaScript twins.

Plain frozen dataclasses that both renderers read: ``render.py`` (matplotlib, in a kernel) and
``runtime.js`` (SVG, on the static page), which receives them as JSON (``dataclasses.asdict``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Sequence

import numpy as np

from .text import check_spec, check_template

__all__ = ["COLORS", "Slider", "Choice", "Line", "Points", "VLine", "HLine", "Text", "Bars",
           "Image", "Grid", "Mark", "Panel", "JsTwin"]

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]
"""Colour cycle shared by the matplotlib and the browser renderer (matplotlib's tab10)."""



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
        check_spec(self.fmt, f"fmt of slider {self.name!r}")

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
        check_template(self.template)
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
        check_spec(self.fmt, f"fmt of grid {self.key!r}")


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
        check_template(self.title)


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


