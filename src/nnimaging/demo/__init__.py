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
cell output also carries an HTML version (``text/html``): a JSON description of the figure that
a small JavaScript runtime (``runtime.js``) draws as SVG and redraws when a slider moves, with no
kernel and no network. The book's HTML builder is configured to pick that representation,
Jupyter front ends pick the widget.

The runtime is on a page once. On the book's site it is a static file,
``_static/nnimaging-runtime.js``, that ``nnimaging.sphinxext`` adds to each page with a demo. In a
notebook, the first demo output of a kernel carries it (a ``<script class="nnimaging-runtime">``),
so a chapter opened alone, in a front end that shows the HTML version and runs its scripts
(nbviewer, for one), still draws every demo. Every demo output ends with a call that draws the
page's new demos once a runtime is there; until then (or where scripts do not run, or where each
output is a separate page without the runtime) it shows its alt text.

In the browser the figure data come from one of two sources:

* ``js=JsTwin(...)``: a JavaScript twin of ``compute`` runs in the page, so every combination
  of slider positions is reachable. The browser tests check that the twin returns the same
  numbers as the Python function (to 1e-6).
* no twin: every combination of positions is computed in Python when the cell runs and the
  results ("frames") are embedded in the page. For step-through figures and trained models at a
  few settings; limited to :data:`MAX_FRAMES` combinations.

Demos are made by factory functions registered with :func:`register` where they are defined
(the topic modules), which names each demo and records the arguments it was made with, so that
tests can rebuild any demo found on a page (:func:`build`). This package imports no topic module:
:func:`discover` imports, by name and only when asked, the modules of the book that register
demos.

Modules: ``text`` (the one formatter of numbers, shared with ``runtime.js``), ``parts``
(controls, marks, panels, twins), ``core`` (:class:`Demo`, its HTML, the registry), ``render``
(the matplotlib figure) and ``live`` (the kernel's widgets).
"""

from .core import (MAX_FRAMES, RUNTIME_FILE, Demo, build, default_name, discover, png_data_uri,
                   register, registry, runtime_js, strip_runtime)
from .parts import (COLORS, Bars, Choice, Grid, HLine, Image, JsTwin, Line, Mark, Panel, Points,
                    Slider, Text, VLine)
from .text import FORMAT_SPECS, fill_template, format_value

__all__ = [
    "Demo", "Slider", "Choice", "Panel", "Line", "Points", "VLine", "HLine", "Text", "Bars",
    "Image", "Grid", "Mark", "JsTwin", "COLORS", "register", "registry", "build", "discover",
    "default_name", "MAX_FRAMES", "RUNTIME_FILE", "runtime_js", "strip_runtime", "png_data_uri",
    "format_value", "fill_template", "FORMAT_SPECS",
]
