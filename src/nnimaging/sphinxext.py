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
* **No ipywidgets state.** Executed chapters carry the state of every widget model (hundreds of
  kB of JSON per page) that myst-nb embeds for ipywidgets' CDN-loaded HTML manager. The book shows
  each demo's self-contained HTML version instead (see ``nnimaging.demo``), so the state is dropped.
* **Portable numerics.** Chapters executed by the build run with NumPy and PyTorch held to their
  AVX2 code (:func:`nnimaging.notebook.pin_cpu_kernels`), like nbval's kernels in the tests.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

MATHJAX_PATH = "mathjax/tex-chtml.js"
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


def setup(app):
    from .notebook import pin_cpu_kernels

    pin_cpu_kernels()  # chapters executed by the build give the outputs stored in the notebooks
    app.connect("config-inited", _use_local_mathjax)
    app.connect("config-inited", _invalidate_stale_cache)
    app.connect("env-get-outdated", _reread_notebooks)
    app.connect("build-finished", _write_stamp)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _clean_scripts, priority=900)  # after the others add theirs
    return {"parallel_read_safe": True, "parallel_write_safe": True}
