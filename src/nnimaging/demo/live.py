"""The kernel-side demo: ipywidgets controls redrawing a matplotlib figure."""

from __future__ import annotations

import io
import time

import ipywidgets as widgets
from IPython.display import Image as IPImage
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image as PILImage

from .parts import Choice
from .text import format_value
from .render import FigureRenderer


class LiveDemo:
    """Widgets for one :class:`~nnimaging.demo.Demo`.

    ``set(**params)`` moves controls programmatically (used by tests and the benchmark);
    ``last_redraw_s`` is the time the last redraw took (compute + draw + PNG encoding).
    """

    def __init__(self, demo):
        self.demo = demo
        self.controls = {}
        for c in demo.controls:
            if isinstance(c, Choice):
                w = widgets.Dropdown(options=[(format_value(v), v) for v in c.positions],
                                     value=c.positions[c.index],
                                     description=c.label or c.name)
            else:
                w = widgets.SelectionSlider(
                    options=[(format_value(v, c.fmt), v) for v in c.positions],
                    value=c.positions[c.index], description=c.label or c.name,
                    continuous_update=True, layout=widgets.Layout(width="420px"))
            w.observe(self._on_change, names="value")
            self.controls[c.name] = w
        self.output = widgets.Output()
        self.renderer = FigureRenderer(demo)
        self.canvas = FigureCanvasAgg(self.renderer.figure)
        self.last_redraw_s = float("nan")
        self.box = widgets.VBox([widgets.HTML(f"<b>{demo.title}</b>"), *self.controls.values(),
                                 self.output])
        self.redraw()

    @property
    def params(self) -> dict:
        return {name: w.value for name, w in self.controls.items()}

    def set(self, **params) -> None:
        """Move controls to the given values (each change redraws once)."""
        for name, value in params.items():
            self.controls[name].value = value

    def _on_change(self, _change) -> None:
        self.redraw()

    def redraw(self) -> None:
        start = time.perf_counter()
        params = self.params
        result = self.demo.result(params)
        self.renderer.update({**params, **result})  # templates may name controls too
        if not self.renderer.drawn:
            self.canvas.draw()
        width, height = self.canvas.get_width_height()
        buf = io.BytesIO()
        PILImage.frombuffer("RGBA", (width, height), self.canvas.buffer_rgba(), "raw", "RGBA", 0,
                            1).save(buf, format="PNG", compress_level=1)
        self.output.clear_output(wait=True)
        self.output.append_display_data(IPImage(data=buf.getvalue(), format="png",
                                                alt=self.demo.alt))
        self.last_redraw_s = time.perf_counter() - start

    def mimebundle(self) -> dict:
        return self.box._repr_mimebundle_()
