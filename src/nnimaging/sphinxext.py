"""Sphinx glue for the book (listed in ``_config.yml`` under ``sphinx.extra_extensions``).

* **Offline math.** MathJax is served from the site itself (``_static/mathjax``), copied at build
  time from the ``django-static-mathjax`` package (MathJax 3.2.2, Apache-2.0), so formulas render
  with no request to a CDN: on a plane, behind a firewall, or in the browser tests.
* **No duplicate scripts.** sphinx-thebe registers its configuration script once per read phase,
  and Jupyter Book's cached execution runs two, so pages declared ``const THEBE_JS_URL`` twice: a
  JavaScript error. Repeated scripts are dropped from each page.
* **A cache that stays valid.** Jupyter Book reuses a chapter's outputs while its code cells are
  unchanged, but the outputs also depend on this package (a demo embeds its JavaScript twin, a
  figure its helper's drawing). The execution cache is emptied when the package's files change.
* **The demo runtime, once per page.** A chapter's first demo output carries the JavaScript runtime
  that draws demos (so that a notebook opened alone draws them too). On the site, pages load it
  from ``_static/nnimaging-runtime.js`` instead, written at build time from the package: each
  page with a demo gets one ``<script src>`` and loses the copy its outputs carry
  (:func:`site_body`).
* **No ipywidgets state.** Executed chapters carry the state of every widget model (hundreds of
  kB of JSON per page) that myst-nb embeds for ipywidgets' CDN-loaded HTML manager. The book shows
  each demo's self-contained HTML version instead (see ``nnimaging.demo``), so the state is dropped.
* **Portable numerics.** Chapters executed by the build run with NumPy and PyTorch held to their
  AVX2 code (:func:`nnimaging.notebook.pin_cpu_kernels`), like nbval's kernels in the tests.
* **The browser denoiser.** The ``{nnimaging-denoiser}`` directive writes the panel of
  :mod:`nnimaging.webdenoiser`; its script and style (``_static/denoiser/``, which Jupyter Book
  would load on every page) are kept only on pages that show a panel; and when a page does, the
  build makes the panel's assets: ONNX Runtime Web's files from the pinned, checksum-verified npm
  tarball, the trained networks exported to ONNX, and the test image (all cached).
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util.docutils import SphinxDirective

from .demo import RUNTIME_FILE, runtime_js, strip_runtime

MATHJAX_PATH = "mathjax/tex-chtml.js"
DENOISER_MODELS = "nnimaging-denoiser-models"  # per-page metadata: the models its panels offer
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def mathjax_source() -> Path:
    """Folder of MathJax's ``es5`` build inside the installed ``django-static-mathjax``."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MathJax for offline math is missing: pip install django-static-mathjax "
                           "(listed in requirements.txt)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"
    if not (folder / "tex-chtml.js").is_file():
        raise RuntimeError(f"expected MathJax's tex-chtml.js in {folder}; reinstall django-static-mathjax")
    return folder


def package_digest() -> str:
    """SHA-256 over the package's source files (Python, JavaScript, data registries, weights)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _invalidate_stale_cache(app, config):
    cache = getattr(config, "nb_execution_cache_path", "") or ""
    if not cache or getattr(config, "nb_execution_mode", "") != "cache":
        return
    cache = Path(app.confdir, cache) if not Path(cache).is_absolute() else Path(cache)
    stamp = cache.parent / ".nnimaging-package-digest"
    current = package_digest()
    app._nnimaging_package_changed = not stamp.is_file() or stamp.read_text() != current
    if app._nnimaging_package_changed and cache.exists():
        shutil.rmtree(cache)
    app._nnimaging_stamp = (stamp, current)  # written once the build has succeeded


def _write_stamp(app, exception):
    if exception is None and getattr(app, "_nnimaging_stamp", None):
        stamp, current = app._nnimaging_stamp
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(current)


def _reread_notebooks(app, env, added, changed, removed):
    """After a package change, every notebook is re-read (and so re-executed)."""
    if not getattr(app, "_nnimaging_package_changed", False):
        return []
    return [doc for doc in env.found_docs if str(env.doc2path(doc)).endswith(".ipynb")]


def _use_local_mathjax(app, config):
    mathjax_source()  # fail early, with the fix in the message
    config.mathjax_path = MATHJAX_PATH


def _copy_mathjax(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / "mathjax"
        if not (target / "tex-chtml.js").is_file():
            shutil.copytree(mathjax_source(), target, dirs_exist_ok=True)


def _clean_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if getattr(script, "attributes", {}).get("type") == WIDGET_STATE:
            continue
        key = (getattr(script, "filename", script) or "",  # inline scripts: None or ""
               repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


DEMO_MARKER = 'class="nnimaging-demo"'
"""How a page's HTML shows that it holds a demo."""


def site_body(body: str, runtime_url: str) -> str:
    """A page's HTML ``body`` as the site serves it: the runtime from ``runtime_url``, not inline.

    Bodies without a demo are returned unchanged.
    """
    if DEMO_MARKER not in body:
        return body
    return f'<script src="{runtime_url}"></script>\n' + strip_runtime(body)


def _demo_runtime(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if body and DEMO_MARKER in body:
        context["body"] = site_body(body, context["pathto"](f"_static/{RUNTIME_FILE}", 1))


def _install_demo_runtime(app, exception):
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        static.mkdir(parents=True, exist_ok=True)
        (static / RUNTIME_FILE).write_text(runtime_js(), encoding="utf-8")


class _DenoiserDirective(SphinxDirective):
    """``{nnimaging-denoiser}``: the browser denoiser panel (options ``:models:``, ``:sigma:``, ``:seed:``)."""

    option_spec = {"models": directives.unchanged, "sigma": directives.nonnegative_int,
                   "seed": directives.nonnegative_int}

    def run(self):
        from .webdenoiser import WEB_MODELS, AssetError, panel_html

        models = [m.strip() for m in self.options.get("models", ",".join(WEB_MODELS)).split(",") if m.strip()]
        try:
            markup = panel_html(models, self.options.get("sigma", 25), self.options.get("seed", 0),
                                uid=str(self.env.new_serialno("nnimaging-denoiser")))
        except (ValueError, AssetError) as exc:
            raise self.error(f"nnimaging-denoiser: {exc}") from exc
        used = self.env.metadata[self.env.docname].setdefault(DENOISER_MODELS, [])
        used.extend(m for m in models if m not in used)
        return [nodes.raw("", markup, format="html")]


def _denoiser_scripts(app, pagename, templatename, context, doctree):
    """Keep ``_static/denoiser/*`` only on pages with a panel (and add them there if missing)."""
    from .webdenoiser import ASSET_DIR, MARKER

    wanted = MARKER in (context.get("body") or "")
    if wanted:
        app._nnimaging_denoiser_pages = getattr(app, "_nnimaging_denoiser_pages", 0) + 1
    for key, name, add in (("script_files", "denoiser.js", app.add_js_file),
                           ("css_files", "denoiser.css", app.add_css_file)):
        assets = context.get(key)
        if assets is None:
            continue
        path = f"{ASSET_DIR}/{name}"
        mine = [a for a in assets if str(getattr(a, "filename", a) or "").endswith(path)]
        if not wanted:
            assets[:] = [a for a in assets if a not in mine]
        elif not mine:
            add(path)


def _install_denoiser_assets(app, exception):
    """Once the pages are written: the panel's runtime, networks and test image, where a page has one."""
    if exception is not None or app.builder.format != "html":
        return
    from .webdenoiser import ASSET_DIR, WEB_MODELS, install

    models = [m for meta in app.env.metadata.values() for m in meta.get(DENOISER_MODELS, [])]
    if not models and not getattr(app, "_nnimaging_denoiser_pages", 0):
        return
    static = Path(app.outdir) / "_static"
    if not (static / ASSET_DIR / "denoiser.js").is_file():
        raise RuntimeError(f"a page shows the browser denoiser, but {static / ASSET_DIR / 'denoiser.js'} is missing: "
                           f"the book's _static/{ASSET_DIR}/ folder (its script and style) must be in html_static_path")
    install(static, list(dict.fromkeys([*WEB_MODELS, *models])))


def setup(app):
    from .notebook import pin_cpu_kernels

    pin_cpu_kernels()  # chapters executed by the build give the outputs stored in the notebooks
    app.connect("config-inited", _use_local_mathjax)
    app.connect("config-inited", _invalidate_stale_cache)
    app.connect("env-get-outdated", _reread_notebooks)
    app.connect("build-finished", _write_stamp)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _clean_scripts, priority=900)  # after the others add theirs
    app.connect("html-page-context", _demo_runtime)
    app.connect("build-finished", _install_demo_runtime)
    app.add_directive("nnimaging-denoiser", _DenoiserDirective)
    app.connect("html-page-context", _denoiser_scripts)
    app.connect("build-finished", _install_denoiser_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
