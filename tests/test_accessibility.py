"""Accessibility of the built site: axe-core finds nothing serious or critical on any page.

Every page of the book (intro, chapters, the authoring guide, the bibliography, the index and the
search page) is opened in headless Chromium, in the light and in the dark colour scheme, and
scanned with axe-core (vendored in tests/vendor, see its README; injected into the page, so the
scan needs no network). Violations of impact "serious" or "critical" fail the test; "moderate"
and "minor" ones are reported by axe but not enforced here.

Findings in markup that the theme and the extensions write are fixed in _static/accessibility.js
(the scan checks those fixes like everything else); the last test checks that the colour-mode
button's name keeps following the mode as a reader switches it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
ENFORCED = ("serious", "critical")

RUN_AXE = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return {version: axe.version, violations: result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => ({target: n.target.join(" "), impact: n.impact,
                                   summary: n.failureSummary}))}))};
}"""


def site_pages(site: Path) -> list[str]:
    """Every page a reader can open, except pages that only redirect (index.html -> intro)."""
    found = []
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site)
        if rel.parts[0] in ("_static", "_sources"):
            continue
        if 'http-equiv="refresh"' in path.read_text(encoding="utf-8")[:2000].lower():
            continue
        found.append(rel.as_posix())
    return found


def open_offline(browser, url, color_scheme="light"):
    """Open ``url`` with every request to another host blocked (and recorded)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900}, color_scheme=color_scheme)
    outside = []
    origin = "/".join(url.split("/", 3)[:3]) if url.startswith("http") else None  # scheme://host:port

    def guard(route):
        request_url = route.request.url
        if (origin and request_url.startswith(origin)) or request_url.startswith(
                ("data:", "blob:", "about:")):
            return route.continue_()
        outside.append(request_url)
        return route.abort()

    page.route("**/*", guard)
    return page, outside


def settle(page):
    """Wait until the page shows what a reader sees once it is ready: math typeset, fonts loaded,
    colours final. The theme's colours fade in over 0.15 s as a page opens (CSS transitions), and
    axe would judge the contrast of an intermediate colour; switching transitions off puts every
    element at its final colour at once."""
    page.evaluate("""async () => {
        if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
        await document.fonts.ready;
    }""")
    page.add_style_tag(content="*, *::before, *::after { transition: none !important; }")
    page.evaluate("""async () => {
        const finite = document.getAnimations().filter(
            a => isFinite(a.effect ? a.effect.getComputedTiming().endTime : Infinity));
        await Promise.all(finite.map(a => a.finished.catch(() => null)));
    }""")


def axe_scan(page) -> tuple[str, list[dict]]:
    """Inject axe-core into ``page`` and return its version and its violations."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(RUN_AXE)
    return result["version"], result["violations"]


def enforced(violations: list[dict]) -> list[str]:
    return [f"{v['id']} ({v['impact']}: {v['help']}) at {n['target']}: "
            + " ".join(n["summary"].split())
            for v in violations if v["impact"] in ENFORCED for n in v["nodes"]]


def test_axe_is_the_vendored_version_and_catches_real_problems(browser):
    """The scanner itself: on a page with known faults it must report them as serious/critical."""
    page, outside = open_offline(browser, "about:blank")
    page.set_content("""<!doctype html><html lang="en"><head><title>faulty</title></head><body>
        <main><h1>Faulty page</h1>
        <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" id="no-alt">
        <button id="no-name"></button>
        <p id="faint" style="color:#bbb;background:#fff">barely readable text</p>
        <input type="range" id="unlabelled"></main></body></html>""")
    version, violations = axe_scan(page)
    page.close()
    expected = (AXE.parent / "README.md").read_text(encoding="utf-8")
    assert f"axe-core {version}" in expected, f"tests/vendor/README.md does not name axe {version}"
    found = {v["id"]: {n["target"] for n in v["nodes"]} for v in violations
             if v["impact"] in ENFORCED}
    assert found.get("image-alt") == {"#no-alt"}
    assert found.get("button-name") == {"#no-name"}
    assert found.get("color-contrast") == {"#faint"}
    assert found.get("label") == {"#unlabelled"}
    assert not outside


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_no_serious_or_critical_violations_on_any_page(browser, site, site_url, color_scheme):
    pages = site_pages(site)
    assert {"intro.html", "bibliography.html", "authoring/demos.html"} <= set(pages)
    assert sum(p.startswith("chapters/") for p in pages) >= 2
    problems = []
    for path in pages:
        page, outside = open_offline(browser, f"{site_url}/{path}", color_scheme)
        page.goto(f"{site_url}/{path}", wait_until="load")
        settle(page)
        assert page.evaluate("() => document.documentElement.dataset.theme") == color_scheme, path
        demos = page.locator("div.nnimaging-demo").count()
        assert page.locator("div.nnimaging-demo[data-mounted] svg").count() == demos, path
        _, violations = axe_scan(page)
        page.close()
        problems += [f"{path} [{color_scheme}]: {line}" for line in enforced(violations)]
        assert not outside, f"{path} requested other hosts: {outside}"
    assert not problems, f"{len(problems)} serious/critical accessibility problems:\n" + "\n".join(
        problems)


def test_mode_button_is_named_after_the_visible_mode(browser, site, site_url):
    """_static/accessibility.js: the colour-mode button's name follows the mode it shows."""
    page, _ = open_offline(browser, f"{site_url}/intro.html")
    page.goto(f"{site_url}/intro.html", wait_until="load")
    button = page.locator(".theme-switch-button").first
    seen = []
    for _ in range(3):  # the button cycles through the three modes
        mode = page.evaluate("() => document.documentElement.dataset.mode")
        label = button.get_attribute("aria-label")
        seen.append((mode, label))
        button.click()
        page.wait_for_function("m => document.documentElement.dataset.mode !== m", arg=mode)
    page.close()
    names = {"light": "Light", "dark": "Dark", "auto": "System Settings"}
    assert {mode for mode, _ in seen} == set(names), seen
    for mode, label in seen:
        assert label == f"Color mode: {names[mode]}", seen
