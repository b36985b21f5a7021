"""The built site as a reader uses it: every page loads cleanly offline, every demo is live.

Runs headless Chromium over the book served on loopback; any request to another host is blocked
and counted as a failure (the book must work with no network).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from nnimaging.demo import build
from twincheck import check_twin_at_random_positions

pytestmark = pytest.mark.browser

# pydata-sphinx-theme logs this on a first visit (no theme stored yet); it is not an error.
HARMLESS_CONSOLE = [re.compile(r"Got invalid theme mode")]


def pages(site: Path) -> list[str]:
    return sorted(str(p.relative_to(site)) for p in site.rglob("*.html")
                  if not p.name.startswith(("genindex", "search")) and "_static" not in p.parts)


def open_page(browser, site_url, page_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = {"errors": [], "outside": []}
    page.on("pageerror", lambda e: problems["errors"].append(str(e)))
    page.on("console", lambda m: problems["errors"].append(m.text) if m.type == "error" and not any(
        p.search(m.text) for p in HARMLESS_CONSOLE) else None)

    def guard(route):
        url = route.request.url
        if url.startswith((site_url, "data:", "blob:", "about:")):
            return route.continue_()
        problems["outside"].append(url)
        return route.abort()

    page.route("**/*", guard)
    page.goto(f"{site_url}/{page_path}", wait_until="load")
    page.wait_for_timeout(300)
    return page, problems


def demo_state(page, index):
    return page.evaluate("""i => {
        const el = document.querySelectorAll('div.nnimaging-demo')[i];
        return {svg: el.querySelector('svg').outerHTML, params: JSON.parse(el.dataset.state),
                name: el.dataset.demo, js: !!el.nnimaging.compute,
                args: el.nnimaging.spec.args, error: el.dataset.error || null};
    }""", index)


def move(page, index, control, back=False):
    """Move one control by one step (a slider with the keyboard), as a reader would.

    ``back=True`` undoes the previous move. Sliders step right, or left when at their maximum.
    """
    handle = page.locator("div.nnimaging-demo").nth(index).locator(f"[data-control='{control}']")
    handle.scroll_into_view_if_needed()
    if handle.evaluate("e => e.tagName") == "SELECT":  # by index: labels like "2" can match values
        options = handle.evaluate("e => e.options.length")
        current = int(handle.input_value())
        handle.select_option(index=(current + (-1 if back else 1)) % options)
        return
    handle.focus()
    if back:
        page.keyboard.press(handle.get_attribute("data-moved"))
        return
    at_max = handle.evaluate("e => +e.value === +e.max")
    key, undo = ("ArrowLeft", "ArrowRight") if at_max else ("ArrowRight", "ArrowLeft")
    handle.evaluate("(e, k) => e.setAttribute('data-moved', k)", undo)
    page.keyboard.press(key)


def test_every_page_loads_without_errors_or_outside_requests(browser, site, site_url):
    checked = pages(site)
    assert any(p.startswith("chapters/") for p in checked)
    for path in checked:
        page, problems = open_page(browser, site_url, path)
        text = page.inner_text("body")
        page.close()
        assert not problems["errors"], f"{path}: {problems['errors']}"
        assert not problems["outside"], f"{path} requested other hosts: {problems['outside']}"
        assert "<function" not in text, f"{path} prints a function repr"


def test_math_is_typeset_offline(browser, site, site_url):
    page, problems = open_page(browser, site_url, "chapters/02_neurons_and_approximation.html")
    page.wait_for_selector("mjx-container", timeout=15000)
    assert page.locator("mjx-container").count() > 10
    page.close()


def test_exercises_show_the_prose_numbers_and_hide_solutions_until_clicked(browser, site, site_url):
    """sphinx-exercise on chapter 2: Exercise 2.1, 2.2 ... as the prose names them, and each
    solution closed until the reader opens it (the solution's code and output included)."""
    page, problems = open_page(browser, site_url, "chapters/02_neurons_and_approximation.html")
    numbers = [n.strip() for n in page.locator("div.exercise .caption-number").all_inner_texts()]
    assert len(numbers) >= 6 and numbers == [f"Exercise 2.{m}" for m in range(1, len(numbers) + 1)]
    # the prose's "(Exercise 2.4)" is a link to the exercise the page numbers 2.4
    mention = page.locator("p:not(.admonition-title) > a[href='#ex-2-4']")
    assert mention.count() >= 1 and mention.first.inner_text().strip() == "Exercise 2.4"
    assert page.locator("#ex-2-4 .caption-number").inner_text().strip() == "Exercise 2.4"
    solutions = page.locator("div.solution")
    assert solutions.count() == len(numbers)
    for i in range(solutions.count()):
        assert not solutions.nth(i).locator("section").first.is_visible(), f"solution {i + 1} is shown"
    first = solutions.first                       # Exercise 2.1's: a code cell and its output
    content = first.locator("section").first
    assert first.locator("div.cell").count() >= 1 and not first.locator("div.cell").first.is_visible()
    first.locator("button.toggle-button").click()
    content.wait_for(state="visible", timeout=5000)
    assert first.locator("div.cell").first.is_visible()
    assert not solutions.nth(1).locator("section").first.is_visible(), "one click opened two solutions"
    assert not problems["errors"], problems["errors"]
    page.close()


def demo_pages(site):
    return [p for p in pages(site) if "nnimaging-demo" in (site / p).read_text(encoding="utf-8")]


def test_every_slider_of_every_demo_changes_its_figure(browser, site, site_url):
    found = demo_pages(site)
    assert "chapters/02_neurons_and_approximation.html" in found
    for path in found:
        page, problems = open_page(browser, site_url, path)
        count = page.locator("div.nnimaging-demo").count()
        assert count > 0
        for i in range(count):
            initial = demo_state(page, i)
            assert initial["error"] is None, f"{path} demo {i}: {initial['error']}"
            for control in initial["params"]:  # each control, starting from the initial figure
                move(page, i, control)
                moved = demo_state(page, i)
                assert moved["params"][control] != initial["params"][control], (path, i, control)
                assert moved["svg"] != initial["svg"], \
                    f"{path}: moving {control} of {initial['name']} changed nothing"
                move(page, i, control, back=True)
                assert demo_state(page, i) == initial, f"{path}: {control} did not move back"
        assert not problems["errors"], f"{path}: {problems['errors']}"
        page.close()


def test_browser_twins_compute_what_python_computes(browser, site, site_url):
    rng = random.Random(0)
    compared = 0
    for path in demo_pages(site):
        page, _ = open_page(browser, site_url, path)
        for i in range(page.locator("div.nnimaging-demo").count()):
            state = demo_state(page, i)
            if not state["js"]:
                continue
            demo = build(state["name"], state["args"])
            for _ in range(5):  # random positions of every control, set through the page
                check_twin_at_random_positions(page, i, demo, rng.randrange(233280))
                compared += 1
        page.close()
    assert compared >= 25  # five random settings of each of chapter 2's five demos at least
