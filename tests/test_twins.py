"""Every demo's JavaScript twin computes what its Python function computes, without building the book.

Each demo in the registry (``nnimaging.demo.registry``, filled by ``nnimaging.demo.discover()``)
whose factory makes a :class:`~nnimaging.demo.JsTwin` is put on a blank page in headless Chromium
(its ``to_html()``: the JSON description and ``runtime.js``, as a chapter's first demo output
carries them), with every request blocked. The runtime mounts it, the controls are moved to seeded random
positions, and the twin's numbers are compared with ``demo(**params)`` to 1e-6 (the comparison of
``tests/test_site.py``, shared in ``tests/twincheck.py``). About ten seconds of CPU for all
twins, most of it importing the package.

Demos are found in the registry, not listed here. A factory is built when its code names
``JsTwin``, so that the demos that precompute frames (some train networks to do so) are not made;
:func:`test_every_twin_of_the_package_is_checked` fails if a twin is made in a way this misses.

The same page checks the runtime itself, without a built site: its text formatter writes what
Python's ``format_value`` writes (one rule, ``nnimaging/demo/text.py``); a page of the site, as
``nnimaging.sphinxext`` makes it, draws its demos from the static ``_static/nnimaging-runtime.js``;
and a notebook's outputs alone (the runtime in the first demo only, nothing served) draw them too.
"""

from __future__ import annotations

import inspect
import math
import random
import re
import struct
import types
from pathlib import Path

import numpy as np
import pytest

import nnimaging.demo
from nnimaging import sphinxext
from nnimaging.demo import (RUNTIME_FILE, Choice, Demo, Line, Panel, Slider, Text, discover,
                            format_value, registry, runtime_js)
from twincheck import FORMAT_TABLE, RANDOM_POSITIONS_JS, RESULT_JS, assert_result_matches, need_playwright

pytestmark = pytest.mark.browser

discover()  # every demo of the book
PACKAGE = Path(nnimaging.demo.__file__).resolve().parents[1]
POSITIONS = 6
"""Random settings of the controls compared per demo, besides the initial one."""


def _names(code: types.CodeType, name: str) -> bool:
    """Whether ``code`` or a function nested in it refers to ``name`` (a global or an attribute)."""
    return name in code.co_names or any(
        _names(c, name) for c in code.co_consts if isinstance(c, types.CodeType))


def twin_demo_names() -> list[str]:
    """Registered demos whose factory makes a JsTwin (factories of the others are not called)."""
    return sorted(name for name, factory in registry.items()
                  if _names(inspect.unwrap(factory).__code__, "JsTwin"))


TWINS = twin_demo_names()


@pytest.fixture(scope="module")
def blank_page(request):
    """A page of headless Chromium on about:blank that may load nothing from anywhere."""
    need_playwright()
    browser = request.getfixturevalue("browser")  # skips without Chromium (fails in CI)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = {"errors": [], "requests": []}
    page.on("pageerror", lambda e: problems["errors"].append(str(e)))
    page.on("console", lambda m: problems["errors"].append(m.text) if m.type == "error" else None)

    def block(route):
        problems["requests"].append(route.request.url)
        return route.abort()

    page.route("**/*", block)
    yield page, problems
    page.close()


def show(page, demo):
    """Put ``demo`` alone on the page, as a chapter's cell output would; the runtime mounts it."""
    page.set_content(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{demo.name}</title>"
                     f"</head><body>{demo.to_html()}</body></html>", wait_until="load")


def test_twins_are_found():
    assert len(TWINS) >= 8, TWINS  # chapter 2's five, chapter 3's two, chapter 7's relighting
    assert {"approximation.sigmoid", "autodiff.gradient_descent"} <= set(TWINS)


@pytest.mark.parametrize("name", TWINS)
def test_twin_computes_what_python_computes(blank_page, name):
    page, problems = blank_page
    problems["errors"].clear()
    demo = registry[name]()
    assert demo.js is not None, f"{name}: its factory names JsTwin but made no twin"
    show(page, demo)
    state = page.evaluate("""() => { const el = document.querySelector('div.nnimaging-demo');
        return {mounted: !!el.nnimaging, error: el.dataset.error || null}; }""")
    assert state == {"mounted": True, "error": None}, f"{name}: {state} {problems['errors']}"
    assert_result_matches(page.evaluate(RESULT_JS, 0), demo, demo.defaults)  # the initial figure
    rng = random.Random(name)  # the same positions on every run
    for _ in range(POSITIONS):
        params = page.evaluate(RANDOM_POSITIONS_JS, [0, rng.randrange(233280)])
        assert_result_matches(page.evaluate(RESULT_JS, 0), demo, params)
    assert not problems["errors"], f"{name}: {problems['errors']}"
    assert not problems["requests"], f"{name} requested {problems['requests']}"


def _twin_entries_in_the_package() -> set[str]:
    """Entry functions named in the package's code: ``JsTwin.from_package(FILE, "entry")``, ``JsTwin(SRC, "entry")``."""
    call = re.compile(r"JsTwin(?:\.from_package)?\(\s*[^,()]+,\s*(?:entry\s*=\s*)?[\"'](\w+)[\"']")
    return {m.group(1) for path in PACKAGE.rglob("*.py")
            for m in call.finditer(path.read_text(encoding="utf-8"))}


def test_every_twin_of_the_package_is_checked():
    """Each twin entry named in the package belongs to a demo that the test above compares."""
    checked = {registry[name]().js.entry for name in TWINS}
    missed = sorted(_twin_entries_in_the_package() - checked)
    assert not missed, (f"JS twins {missed} belong to no demo this test checks: register their "
                        "demo (@register from nnimaging.demo, imported by name in its module), and "
                        "let the factory name JsTwin in its own code")


# --------------------------------------------------------------------------- the runtime itself
def _js_value(value):
    """``value`` as Playwright passes it to the page (NumPy scalars as Python's, -0.0 kept)."""
    return value.item() if isinstance(value, np.generic) else value


def _random_values(count: int, seed: int = 0) -> list[float]:
    """Any doubles, dyadic numbers (exact ties at some digits), and numbers of every magnitude."""
    rng, out = random.Random(seed), []
    while len(out) < count:
        kind = rng.randrange(3)
        if kind == 0:
            v = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        elif kind == 1:
            v = rng.randrange(-10**6, 10**6) / 2 ** rng.randrange(0, 12)
        else:
            v = rng.uniform(-1, 1) * 10.0 ** rng.randrange(-12, 22)
        if math.isfinite(v):
            out.append(v)
    return out


FORMAT_SPECS = ["", "d", ".0f", ".2f", ".3f", ".1e", ".3e", ".1%"]


def test_the_browser_formats_numbers_as_python_does(blank_page):
    page, problems = blank_page
    page.set_content(f"<!DOCTYPE html><html><body><script>{runtime_js()}</script></body></html>")
    cases = [(v, s) for v, s, _ in FORMAT_TABLE]
    cases += [(v, s) for v in _random_values(400) for s in FORMAT_SPECS]
    texts = page.evaluate("cases => cases.map(([v, s]) => window.nnimagingDemo.formatValue(v, s))",
                          [[_js_value(v), s] for v, s in cases])
    for (value, spec, text), got in zip(FORMAT_TABLE, texts):
        assert got == text, f"format_value({value!r}, {spec!r}): the browser wrote {got!r}, not {text!r}"
    differ = [(v, s, format_value(v, s), got) for (v, s), got in zip(cases, texts)
              if format_value(v, s) != got]
    assert not differ, f"{len(differ)} of {len(cases)} differ, e.g. (value, spec, Python, browser): {differ[:5]}"
    assert not problems["errors"], problems["errors"]


def _small_demo(name="test.parabola") -> Demo:
    def compute(a, kind):
        x = np.linspace(-1, 1, 21)
        return {"x": x, "y": a * x**2 if kind == "up" else -a * x**2, "peak": float(a)}

    return Demo(name, "A parabola", [Slider("a", 0.0, 2.0, 0.125, 1.0, fmt=".2f"),
                                     Choice("kind", (True, "up", "down"), "up")],
                compute, [Panel([Line("x", "y"), Text("a = {a:.2f}, peak {peak:.2f}")],
                                xlim=(-1, 1), ylim=(-2, 2))], alt="a parabola y = a x^2")


SITE = "http://book.test"


@pytest.fixture
def chromium(request):
    """The headless Chromium of ``conftest.py`` (skips without Chromium, fails so in CI)."""
    need_playwright()
    return request.getfixturevalue("browser")


def _open(browser, html: str, served: dict[str, str]) -> tuple:
    """Open ``html`` at ``SITE/chapters/page.html`` with only the files ``served`` (path -> text)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []

    def serve(route):
        url = route.request.url
        requests.append(url)
        if url == f"{SITE}/chapters/page.html":
            return route.fulfill(body=html, content_type="text/html")
        if url.removeprefix(SITE) in served:
            return route.fulfill(body=served[url.removeprefix(SITE)], content_type="text/javascript")
        return route.abort()

    page.route("**/*", serve)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{SITE}/chapters/page.html", wait_until="load")
    return page, requests, errors


def _demos(page) -> list[dict]:
    return page.evaluate("""() => [...document.querySelectorAll('div.nnimaging-demo')].map(el => ({
        mounted: !!el.nnimaging, svg: el.querySelector('svg') ? el.querySelector('svg').outerHTML : null,
        readout: [...el.querySelectorAll('output')].map(o => o.textContent),
        options: [...el.querySelectorAll('option')].map(o => o.textContent),
        pending: !!el.querySelector('.nnd-pending'), error: el.dataset.error || null}))""")


def _document(body: str) -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head><body>{body}</body></html>"


def test_a_site_page_draws_its_demos_with_the_static_runtime(chromium):
    """The body as ``nnimaging.sphinxext`` serves it: one <script src>, no inline runtime."""
    outputs = _small_demo().to_html(runtime=True) + _small_demo("test.other").to_html(runtime=False)
    body = sphinxext.site_body(outputs, f"../_static/{RUNTIME_FILE}")
    assert runtime_js() not in body
    page, requests, errors = _open(chromium, _document(body), {f"/_static/{RUNTIME_FILE}": runtime_js()})
    try:
        assert requests == [f"{SITE}/chapters/page.html", f"{SITE}/_static/{RUNTIME_FILE}"]
        before = _demos(page)
        assert [d["mounted"] for d in before] == [True, True] and not any(d["pending"] for d in before)
        assert before[0]["readout"] == ["1.00", "up"] and before[0]["options"] == ["True", "up", "down"]
        assert "a = 1.00, peak 1.00" in before[0]["svg"]
        slider = page.locator("div.nnimaging-demo").first.locator("[data-control='a']")
        slider.focus()
        page.keyboard.press("ArrowRight")  # one step: 1.125, a tie at two digits
        after = _demos(page)[0]
        assert after["readout"][0] == format_value(1.125, ".2f") == "1.12"
        assert after["svg"] != before[0]["svg"] and "a = 1.12, peak 1.12" in after["svg"]
        assert _demos(page)[1]["svg"] == before[1]["svg"]  # the other demo did not move
        assert not errors, errors
    finally:
        page.close()


def test_a_notebook_alone_draws_every_demo_from_its_first_output(chromium):
    """Outputs as a chapter stores them (the runtime in the first demo only), no file served."""
    cells = [_small_demo().to_html(runtime=True), "<p>a markdown cell</p>",
             _small_demo("test.second").to_html(runtime=False),
             _small_demo("test.third").to_html(runtime=False)]
    page, requests, errors = _open(chromium, _document("".join(cells)), {})
    try:
        assert requests == [f"{SITE}/chapters/page.html"]
        demos = _demos(page)
        assert [d["mounted"] for d in demos] == [True, True, True], demos
        assert all(d["svg"] and not d["pending"] and d["error"] is None for d in demos)
        assert not errors, errors
    finally:
        page.close()


def test_without_any_runtime_a_demo_shows_its_alt_text(chromium):
    """An output whose page has no runtime (a front end that shows each output alone) says what it shows."""
    page, _, errors = _open(chromium, _document(_small_demo().to_html(runtime=False)), {})
    try:
        (demo,) = _demos(page)
        assert not demo["mounted"] and demo["pending"] and not errors
        assert "Interactive figure: a parabola y = a x^2" in page.inner_text("body")
    finally:
        page.close()
