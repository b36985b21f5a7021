"""Every demo's JavaScript twin computes what its Python function computes, without building the book.

Each demo in the registry (``nnimaging.demo.registry``, filled by importing ``nnimaging.demos``)
whose factory makes a :class:`~nnimaging.demo.JsTwin` is put on a blank page in headless Chromium
(its ``to_html()``: the JSON description and ``runtime.js``, as a chapter's cell output carries
them), with every request blocked. The runtime mounts it, the controls are moved to seeded random
positions, and the twin's numbers are compared with ``demo(**params)`` to 1e-6 (the comparison of
``tests/test_site.py``, shared in ``tests/twincheck.py``). About ten seconds of CPU for all
twins, most of it importing the package.

Demos are found in the registry, not listed here. A factory is built when its code names
``JsTwin``, so that the demos that precompute frames (some train networks to do so) are not made;
:func:`test_every_twin_of_the_package_is_checked` fails if a twin is made in a way this misses.
"""

from __future__ import annotations

import inspect
import random
import re
import types
from pathlib import Path

import pytest

import nnimaging.demos  # noqa: F401  (registers every demo of the book)
from nnimaging.demo import registry
from twincheck import RANDOM_POSITIONS_JS, RESULT_JS, assert_result_matches, need_playwright

pytestmark = pytest.mark.browser

PACKAGE = Path(nnimaging.demos.__file__).resolve().parent
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
                        "demo (and import its module in nnimaging/demos.py), and let the factory "
                        "name JsTwin in its own code")
