"""Draw a demo's panels with matplotlib (the kernel-side twin of ``runtime.js``).

:class:`FigureRenderer` draws every mark once, then moves the existing artists when the
controls change (``set_data``, ``set_text`` ...), which keeps a slider responsive in a kernel.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .parts import COLORS, Bars, Grid, HLine, Image, Line, Points, Text, VLine
from .text import fill_template, format_value

PX = 1 / 100  # figure inches per pixel at dpi 100
_ANCHOR = {"start": "left", "middle": "center", "end": "right"}


def _value(ref, values):
    return values[ref] if isinstance(ref, str) else ref


def _xy(mark, values):
    return np.asarray(values[mark.x], float).ravel(), np.asarray(values[mark.y], float).ravel()


def _grid_arrays(mark: Grid, values):
    data = np.asarray(values[mark.key], float)
    data = data[None, :] if data.ndim == 1 else data
    if mark.highlight is None:
        return data, np.zeros(data.shape, bool)
    return data, np.asarray(values[mark.highlight], bool).reshape(data.shape)


class FigureRenderer:
    """A matplotlib figure for one demo; :meth:`update` redraws it for new values."""

    def __init__(self, demo):
        self.demo = demo
        nrows = math.ceil(len(demo.panels) / demo.ncols)
        self.figure = Figure(figsize=(720 * PX, demo.height * nrows * PX), dpi=100,
                             layout="constrained")
        self._updaters = None
        self._shapes = None
        self.drawn = False  # whether the last update already rendered the canvas


    def update(self, values: dict) -> Figure:
        """Show ``values`` (control values merged with the computed result)."""
        shapes = self._shape_signature(values)
        if self._updaters is None or shapes != self._shapes:
            self._build(values)  # lays out by drawing once: that drawing is up to date
            self._shapes = shapes
            self.drawn = True
        else:
            for updater in self._updaters:
                updater(values)
            self.drawn = False
        return self.figure

    def _shape_signature(self, values):
        """Array shapes that need new artists when they change (grids, images, bars)."""
        sig = []
        for panel in self.demo.panels:
            for m in panel.marks:
                if isinstance(m, (Grid, Image)):
                    sig.append(np.shape(values[m.key]))
                elif isinstance(m, Bars):
                    sig.append(np.shape(values[m.x]))
        return tuple(sig)

    def _build(self, values):
        fig = self.figure
        fig.clear()
        fig.set_layout_engine("constrained")
        self._updaters = []
        nrows = math.ceil(len(self.demo.panels) / self.demo.ncols)
        for i, panel in enumerate(self.demo.panels):
            ax = fig.add_subplot(nrows, self.demo.ncols, i + 1)
            self._build_panel(ax, panel, values)
        fig.canvas.draw()  # lay out once, then keep the positions: later updates only move artists
        fig.set_layout_engine("none")

    def _build_panel(self, ax, panel, values):
        add = self._updaters.append
        colors = iter(COLORS * 10)

        def color_of(mark):
            return mark.color or next(colors)

        for mark in panel.marks:
            if isinstance(mark, Line):
                (artist,) = ax.plot(*_xy(mark, values), color=color_of(mark), lw=mark.width,
                                    ls="--" if mark.dash else "-", label=mark.label)
                add(lambda v, a=artist, m=mark: a.set_data(*_xy(m, v)))
            elif isinstance(mark, Points):
                (artist,) = ax.plot(*_xy(mark, values), "o", color=color_of(mark), ms=mark.size,
                                    label=mark.label)
                add(lambda v, a=artist, m=mark: a.set_data(*_xy(m, v)))
            elif isinstance(mark, Bars):
                bars = ax.bar(*_xy(mark, values), width=mark.width, color=color_of(mark),
                              label=mark.label)

                def update_bars(v, bars=bars, m=mark):
                    for bar, height in zip(bars, _xy(m, v)[1]):
                        bar.set_height(height)
                add(update_bars)
            elif isinstance(mark, VLine):
                artist = ax.axvline(float(_value(mark.x, values)), color=mark.color, lw=1.2,
                                    ls="--" if mark.dash else "-", label=mark.label)
                add(lambda v, a=artist, m=mark: a.set_xdata([float(_value(m.x, v))] * 2))
            elif isinstance(mark, HLine):
                artist = ax.axhline(float(_value(mark.y, values)), color=mark.color, lw=1.2,
                                    ls="--" if mark.dash else "-", label=mark.label)
                add(lambda v, a=artist, m=mark: a.set_ydata([float(_value(m.y, v))] * 2))
            elif isinstance(mark, Text):
                artist = ax.text(float(_value(mark.x, values)), float(_value(mark.y, values)),
                                 fill_template(mark.template, values), color=mark.color,
                                 fontsize=mark.size * 0.8, ha=_ANCHOR[mark.anchor], va="center",
                                 transform=ax.transAxes if mark.coords == "axes" else ax.transData)

                def update_text(v, a=artist, m=mark):
                    a.set_position((float(_value(m.x, v)), float(_value(m.y, v))))
                    a.set_text(fill_template(m.template, v))
                add(update_text)
            elif isinstance(mark, Image):
                artist = ax.imshow(np.asarray(values[mark.key], float), cmap="gray",
                                   vmin=mark.vmin, vmax=mark.vmax, interpolation="nearest")
                add(lambda v, a=artist, m=mark: a.set_data(np.asarray(v[m.key], float)))
            elif isinstance(mark, Grid):
                add(self._build_grid(ax, mark, values))
        if panel.title:
            title = ax.set_title(fill_template(panel.title, values), fontsize=10)
            add(lambda v, a=title, p=panel: a.set_text(fill_template(p.title, v)))
        if panel.xlabel:
            ax.set_xlabel(panel.xlabel)
        if panel.ylabel:
            ax.set_ylabel(panel.ylabel)
        if panel.xlim:
            ax.set_xlim(*panel.xlim)
        if panel.ylim:
            ax.set_ylim(*panel.ylim)
        if not (panel.xlim and panel.ylim) and panel.axes:
            def rescale(v, ax=ax, p=panel):
                ax.relim()
                ax.autoscale_view(scalex=not p.xlim, scaley=not p.ylim)
            add(rescale)
        if panel.legend:
            ax.legend(loc="upper right", fontsize=8)
        if not panel.axes:
            ax.set_axis_off()

    @staticmethod
    def _build_grid(ax, mark: Grid, values):
        data, mask = _grid_arrays(mark, values)
        rows, cols = data.shape
        cells, labels = {}, {}
        for r in range(rows):
            for c in range(cols):
                cells[r, c] = ax.add_patch(Rectangle((c, r), 1, 1, edgecolor="#555555", lw=1,
                                                     facecolor="white"))
                labels[r, c] = ax.text(c + 0.5, r + 0.5, "", ha="center", va="center", fontsize=9)
        ax.set_xlim(0, cols)
        ax.set_ylim(rows, 0)
        ax.set_aspect("equal")

        def update_grid(v):
            data, mask = _grid_arrays(mark, v)
            for (r, c), cell in cells.items():
                cell.set_facecolor(mark.color if mask[r, c] else "white")
                labels[r, c].set_text(format_value(data[r, c], mark.fmt)
                                      if np.isfinite(data[r, c]) else "")

        update_grid(values)
        return update_grid
