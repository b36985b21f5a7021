"""A demo (one interactive figure), its cell output, and the registry of demo factories.

This module imports nothing of the book's chapters or topic modules: a topic module registers its
demos when it is imported (``@register``), and :func:`discover` imports, by name and only when
asked, the modules of a package that register demos.
"""

from __future__ import annotations

import ast
import base64
import functools
import hashlib
import importlib
import importlib.util
import inspect
import io
import itertools
import json
import os
import math
import pkgutil
import re
import sys
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .parts import COLORS, Choice, Image, JsTwin, Panel, Slider

__all__ = ["MAX_FRAMES", "RUNTIME_FILE", "Demo", "register", "registry", "build", "discover",
           "runtime_js", "strip_runtime", "png_data_uri"]

MAX_FRAMES = 2000
"""Most combinations of control positions a frames-mode demo may precompute."""
RESULT_CACHE_BYTES = 64 * 2**20
"""Most bytes of arrays a demo keeps of its computed results (see :meth:`Demo.result`)."""

RUNTIME_FILE = "nnimaging-runtime.js"
"""Name of the runtime in the built site's ``_static/`` folder (``nnimaging.sphinxext``)."""

RUNTIME_CLASS = "nnimaging-runtime"
"""Class of the ``<script>`` element that carries the runtime inside a cell output."""

_RUNTIME_BLOCK = re.compile(r'<script class="nnimaging-runtime">.*?</script>\n?', re.S)
MOUNT = "<script>window.nnimagingDemo&&window.nnimagingDemo.mountAll()</script>"
"""The script every demo output ends with: draws the page's new demos once the runtime is there."""


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
        text = resources.files(__package__).joinpath("runtime.js").read_text(encoding="utf-8")
        if "</script" in text.lower():
            raise RuntimeError("runtime.js contains '</script', which would end the <script> "
                               "element that carries it in a cell output: write '<\\/script'")
        _RUNTIME_CACHE["js"] = text
    return _RUNTIME_CACHE["js"]


def strip_runtime(html: str) -> str:
    """``html`` without the runtime that a cell output carries (the site serves it as a file)."""
    return _RUNTIME_BLOCK.sub("", html)


def _nbytes(value) -> int:
    """Roughly the memory ``value`` holds: an array's bytes, 8 per number or list entry."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (list, tuple)):
        return 8 * len(value) + sum(_nbytes(v) for v in value)
    return 8


# --------------------------------------------------------------------------- which output carries the runtime
_runtime_home: list = []
"""The cell (its id, or ``None``) whose demo output carries the runtime in this kernel."""


def _current_cell() -> str | None:
    """Id of the notebook cell the kernel is running, where the front end sends it (JupyterLab)."""
    ipython = sys.modules.get("IPython")
    try:
        shell = ipython.get_ipython() if ipython is not None else None
        kernel = getattr(shell, "kernel", None)
        parent = kernel.get_parent() if kernel is not None else None
        return (parent or {}).get("metadata", {}).get("cellId")
    except Exception:  # noqa: BLE001 (no kernel, or another kernel API: no cell id)
        return None


def _output_carries_runtime() -> bool:
    """Whether the demo output being made now embeds the runtime.

    The first demo shown by a kernel does, and that cell's outputs again when it is re-run (where
    the front end sends cell ids); later demos only ask the page's runtime to draw them. A chapter
    run top to bottom (``python -m nnimaging execute``, nbval) so carries one copy, in its first
    demo.
    """
    cell = _current_cell()
    if not _runtime_home:
        _runtime_home.append(cell)
        return True
    return cell is not None and _runtime_home[0] == cell


# --------------------------------------------------------------------------- the demo
_FIGURE = ("title", "controls", "compute", "panels")


class Demo:
    """An interactive figure: ``Demo([name,] title, controls, compute, panels, *, alt, ...)``.

    Parameters
    ----------
    name : str, optional
        Registry name (``"topic.short_name"``). Leave it out in a factory decorated with
        :func:`register`, which names the demo; when given, it must be the registered name. The
        first positional argument is the name only when it is followed by a second string (the
        title).
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
    args : dict, optional
        JSON arguments of the factory that rebuild the demo. :func:`register` records them by
        itself; give them only to record something else.
    """

    def __init__(self, *positional, alt: str, js: JsTwin | None = None, ncols: int | None = None,
                 height: int = 280, args: dict | None = None, name: str | None = None,
                 title: str | None = None, controls: Sequence[Slider | Choice] | None = None,
                 compute: Callable[..., dict] | None = None, panels: Sequence[Panel] | None = None):
        pos = list(positional)
        if pos and isinstance(pos[0], str) and (
                (len(pos) > 1 and isinstance(pos[1], str)) or title is not None):
            if name is not None:
                raise TypeError("Demo() got the name twice (positionally and as name=)")
            name = pos.pop(0)
        if len(pos) > len(_FIGURE):
            raise TypeError(f"Demo() takes [name,] {', '.join(_FIGURE)} positionally, "
                            f"got {len(positional)} positional arguments")
        given = dict(zip(_FIGURE, pos))
        for key, value in (("title", title), ("controls", controls), ("compute", compute),
                           ("panels", panels)):
            if value is not None:
                if key in given:
                    raise TypeError(f"Demo() got {key} twice (positionally and as {key}=)")
                given[key] = value
        missing = [key for key in _FIGURE if given.get(key) is None]
        if missing:
            raise TypeError(f"Demo() needs {', '.join(missing)} (expected Demo([name,] title, "
                            "controls, compute, panels, alt=...))")
        if name is not None and (not isinstance(name, str) or not name.strip()):
            raise ValueError(f"a demo's name must be a non-empty string, got {name!r}")
        if not isinstance(given["title"], str):
            raise TypeError(f"a demo's title must be a string, got {type(given['title']).__name__}")
        if not callable(given["compute"]):
            raise TypeError(f"compute must be a function compute(**params) -> dict, got "
                            f"{type(given['compute']).__name__}")
        if not isinstance(alt, str) or not alt.strip():
            raise ValueError("every demo needs alt text describing the figure")
        controls = tuple(given["controls"])
        names = [c.name for c in controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique, got {names}")
        self.name, self.title, self.alt = name, given["title"], alt
        self.controls = controls
        self.compute = given["compute"]
        self.panels = tuple(given["panels"])
        self.js = js
        self.ncols = ncols or len(self.panels)
        self.height = height
        self.args = None if args is None else dict(args)
        self._results: dict[tuple, dict] = {}
        self._result_bytes = 0
        if js is None and self.n_combinations > MAX_FRAMES:
            raise ValueError(f"demo {name or self.title!r} has {self.n_combinations} combinations "
                             f"of control positions; precomputing more than {MAX_FRAMES} is too "
                             "much for a page: give it a JsTwin so the browser computes")

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

    def result(self, params: dict) -> dict:
        """``compute(**params)``, remembered for the next request of the same control positions.

        A demo without a twin computes every combination for its page; a kernel's slider then
        finds each result computed (a move of the DnCNN-3 demo: a lookup instead of a 20-layer
        network). Results are kept while their arrays total at most :data:`RESULT_CACHE_BYTES`;
        ``compute`` must depend on the positions only (the chapters seed what they draw). The
        result is shared: callers must not modify it.
        """
        key = tuple(params[c.name] for c in self.controls)
        try:
            return self._results[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable control value: nothing to remember it by
            return self.compute(**params)
        result = self.compute(**params)
        size = sum(_nbytes(v) for v in result.values())
        if self._result_bytes + size <= RESULT_CACHE_BYTES:
            self._results[key] = result
            self._result_bytes += size
        return result

    # ---- the static, browser-side representation
    def spec(self) -> dict:
        """The JSON description the browser runtime draws."""
        spec = {
            "name": self.name, "args": self.args or {}, "title": self.title, "alt": self.alt,
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
        result = self.result(params)
        image_keys = {m.key: m for p in self.panels for m in p.marks if isinstance(m, Image)}
        frame = {}
        for key, value in result.items():
            if key in image_keys:
                m = image_keys[key]
                frame[key] = png_data_uri(np.asarray(value), m.vmin, m.vmax)
            else:
                frame[key] = _to_jsonable(value)
        return frame

    def to_html(self, runtime: bool = True) -> str:
        """The demo's HTML: its JSON description, the runtime (with ``runtime=True``), a mount call.

        With the runtime the HTML is self-contained. Without it, it draws once a runtime is on
        the page: served by the site (``nnimaging.sphinxext``), or carried by an earlier demo
        output of the same notebook. Until then (or where scripts do not run) it shows the alt
        text.
        """
        payload = json.dumps(self.spec(), separators=(",", ":"), sort_keys=True, allow_nan=False)
        payload = payload.replace("</", "<\\/")
        digest = hashlib.sha256(payload.encode()).hexdigest()[:12]
        carried = f'<script class="{RUNTIME_CLASS}">{runtime_js()}</script>\n' if runtime else ""
        return (
            f'<div class="nnimaging-demo" data-demo="{_escape(self.name or "")}" data-digest="{digest}">'
            f'<script type="application/json" class="nnimaging-demo-spec">{payload}</script>'
            f'<p class="nnd-pending">Interactive figure: {_escape(self.alt)} (Its controls need the '
            "book's demo runtime: run the notebook, or read the chapter on the book's website.)</p>"
            "</div>\n" + carried + MOUNT
        )

    # ---- the live, kernel-side representation
    def widget(self):
        """An ipywidgets box: controls that redraw a matplotlib figure through ``compute``."""
        from .live import LiveDemo

        return LiveDemo(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        widget = self.widget()
        bundle = widget.mimebundle()
        bundle["text/html"] = self.to_html(runtime=_output_carries_runtime())
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


def default_name(factory: Callable) -> str:
    """The name :func:`register` gives ``factory``: ``"<module>.<function without _demo>"``."""
    module = factory.__module__.rsplit(".", 1)[-1]
    return f"{module}.{factory.__name__.removesuffix('_demo')}"


def _json_default(value):
    if isinstance(value, os.PathLike):  # a folder of weights, say: recorded as its path
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} {value!r}")


def _recorded_args(name: str, signature: inspect.Signature, bound: inspect.BoundArguments) -> dict:
    """The arguments a factory was called with, by keyword, as JSON values."""
    args = {}
    for key, value in bound.arguments.items():
        if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
            args.update(value)
        else:
            args[key] = value
    try:
        return json.loads(json.dumps(args, default=_json_default, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise TypeError(f"demo {name!r} was called with an argument that is not a JSON value "
                        f"({err}); a demo's factory takes numbers, strings, lists, dicts and None "
                        "(an image's name, not its pixels), so that its page can be rebuilt "
                        "with nnimaging.demo.build") from None


def register(name: str | Callable | None = None):
    """Register a demo factory: ``@register``, or ``@register("topic.short_name")``.

    The factory returns a :class:`Demo`; each call of the registered function names the demo
    (``name``, by default :func:`default_name`: ``approximation.sigmoid`` for
    ``approximation.sigmoid_demo``) and records the arguments it was called with, so that
    :func:`build` can make the same demo again from what the page shows. Its parameters must be
    passable by keyword, and its arguments JSON values.
    """
    if callable(name):  # bare @register
        return register(None)(name)
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"register() takes a demo name (a non-empty string) or nothing, got {name!r}")

    def decorator(factory: Callable[..., Demo]) -> Callable[..., Demo]:
        key = name or default_name(factory)
        signature = inspect.signature(factory)
        for p in signature.parameters.values():
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL):
                raise TypeError(f"demo factory {factory.__qualname__}: parameter {p.name!r} cannot "
                                "be passed by keyword, so build() could not rebuild the demo")

        @functools.wraps(factory)
        def make(*args, **kwargs) -> Demo:
            bound = signature.bind(*args, **kwargs)
            demo = factory(*args, **kwargs)
            if not isinstance(demo, Demo):
                raise TypeError(f"demo factory {key!r} returned {type(demo).__name__}, expected a Demo")
            if demo.name is None:
                demo.name = key
            elif demo.name != key:
                raise ValueError(f"demo factory registered as {key!r} made a demo named "
                                 f"{demo.name!r}: leave the name out of Demo(...)")
            if demo.args is None:
                demo.args = _recorded_args(key, signature, bound)
            return demo

        make.demo_name = key
        old = registry.get(key)
        if old is not None and (old.__module__, old.__qualname__) != (make.__module__, make.__qualname__):
            raise ValueError(f"demo name {key!r} is registered twice: by {old.__module__}."
                             f"{old.__qualname__} and {make.__module__}.{make.__qualname__}")
        registry[key] = make
        return make

    return decorator


def _imports_register(path: Path) -> bool:
    """Whether the module at ``path`` imports ``register`` from ``nnimaging.demo`` (read, not run)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any(a.name == "register" for a in node.names):
            if (node.level == 1 and node.module == "demo") or node.module == f"{_ROOT}.demo":
                return True
    return False


_ROOT = __package__.rpartition(".")[0]  # "nnimaging"


def discover(package: str = _ROOT) -> dict[str, Callable[..., Demo]]:
    """Import every module of ``package`` (not its subpackages) that registers a demo.

    Modules are found by reading their source (one that imports ``register`` from
    ``nnimaging.demo``), then imported by name; returns :data:`registry`, which then holds every
    demo of the package. Tests and the site's build call it; nothing in this library imports a
    topic module otherwise.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"expected the name of an installed package, got {package!r}")
    for info in pkgutil.iter_modules(spec.submodule_search_locations):
        if info.ispkg or info.name.startswith("_"):
            continue
        path = Path(info.module_finder.path) / f"{info.name}.py"
        if _imports_register(path):
            importlib.import_module(f"{package}.{info.name}")
    return registry


def build(name: str, args: dict | None = None) -> Demo:
    """Make the registered demo ``name`` with factory arguments ``args`` (what its page records).

    A name not registered yet makes :func:`discover` import the package's demo modules first.
    """
    if name not in registry:
        discover()
    if name not in registry:
        raise KeyError(f"no demo named {name!r}; known: {sorted(registry)}")
    return registry[name](**(args or {}))
