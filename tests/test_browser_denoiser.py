"""The browser denoiser: the book's networks run in headless Chromium, offline, and agree with PyTorch.

The panel (``{nnimaging-denoiser}``, :mod:`nnimaging.webdenoiser`, ``_static/denoiser/``) is
driven as a reader drives it: upload a file, pick a noise level and a network, press the button,
read the PSNR. Every request to another host is blocked and fails the test.

Two sites carry the panel:

* ``tiny``: a two-page Jupyter Book built here in a temporary folder, with the book's extension
  and ``_static/denoiser/`` and one page that holds the directive (no notebook is executed);
* ``book``: chapter 5 of the built book (the ``site`` fixture), once the chapter shows the panel.

The tests that need no browser check the build step: ONNX Runtime Web's tarball is verified
against its pinned SHA-512, a failed download or a wrong file gives a clear error.
"""

from __future__ import annotations

import functools
import gzip
import http.server
import io
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnimaging import webdenoiser
from nnimaging.data import fetch, load_images
from nnimaging.evaluate import evaluate_denoiser
from nnimaging.weightstore import load_pretrained

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "chapters/05_denoising_with_dncnn"
PANEL = "[data-nnimaging-denoiser]"
LATENCY_BUDGET_S = 3.0  # a 256x256 image through unet-denoise, network time, warm
PSNR_TOLERANCE_DB = 0.3  # the browser's noise draws differ from numpy's
HARMLESS_CONSOLE = ("Got invalid theme mode",)
TINY_CONFIG = """title: Browser denoiser test
author: nnimaging tests
only_build_toc_files: true
execute:
  execute_notebooks: "off"
parse:
  myst_enable_extensions: [colon_fence, dollarmath]
sphinx:
  extra_extensions:
    - nnimaging.sphinxext
"""
TINY_TOC = "format: jb-book\nroot: index\nchapters:\n  - file: panel\n"


# ------------------------------------------------------------------------------------ sites
def build_tiny_site(folder: Path) -> Path:
    """A two-page Jupyter Book that uses the extension, one page with the panel; returns its html."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "_config.yml").write_text(TINY_CONFIG)
    (folder / "_toc.yml").write_text(TINY_TOC)
    (folder / "index.md").write_text("# Tiny book\n\nA page without the panel.\n")
    (folder / "panel.md").write_text("# Denoise in your browser\n\n```{nnimaging-denoiser}\n```\n")
    shutil.copytree(ROOT / "_static" / "denoiser", folder / "_static" / "denoiser", dirs_exist_ok=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb) if jb.exists() else "jupyter-book", "build", str(folder), "-W", "--keep-going"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail("the tiny book does not build:\n" + result.stdout[-6000:] + result.stderr[-3000:])
    return folder / "_build" / "html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def tiny_site(tmp_path_factory):
    html = build_tiny_site(tmp_path_factory.mktemp("tiny-book"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}", "panel.html"
    server.shutdown()


def _chapter_has_panel() -> bool:
    notebook = ROOT / f"{CHAPTER}.ipynb"
    return notebook.is_file() and "nnimaging-denoiser" in notebook.read_text(encoding="utf-8")


@pytest.fixture(scope="session", params=["book" if _chapter_has_panel() else "tiny"])
def panel_site(request):
    """(built html folder, served URL, page path) of a site whose page shows the panel.

    The book's chapter 5 where it shows the panel (the page readers use); otherwise a two-page
    book built for the test, so that the panel is tested before a chapter carries it. One of the
    two, not both: every test below takes a minute or more of browser time.
    """
    if request.param == "tiny":
        return request.getfixturevalue("tiny_site")
    return request.getfixturevalue("site"), request.getfixturevalue("site_url"), f"{CHAPTER}.html"


# ------------------------------------------------------------------------------------ the page
class Panel:
    """One panel on a page opened offline; records page errors and requests to other hosts."""

    def __init__(self, browser, base, path):
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors, self.outside, self.fetched = [], [], []  # fetched: paths under the site
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" and not any(
            h in m.text for h in HARMLESS_CONSOLE) else None)

        def guard(route):
            url = route.request.url
            if url.startswith((base, "data:", "blob:", "about:")):
                return route.continue_()
            self.outside.append(url)
            return route.abort()

        def record(request):
            if request.url.startswith(base):
                self.fetched.append(request.url.split("?")[0][len(base):].lstrip("/"))

        self.page.context.route("**/*", guard)  # the context's route also covers the Web Worker
        self.page.context.on("request", record)
        self.page.goto(f"{base}/{path}", wait_until="load")
        self.root = self.page.locator(PANEL).first
        self.root.scroll_into_view_if_needed()
        self.page.wait_for_selector(f"{PANEL}[data-ready], {PANEL}[data-error]", timeout=20000)

    def upload(self, name, data: bytes, mime="image/png"):
        self.root.locator("input[type=file]").set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])

    def status(self):
        return self.root.locator("[role=status]").inner_text()

    def run(self, model, sigma, seed=0, timeout=120000):
        self.root.locator("select").select_option(model)
        self.root.locator("input[type=range][name=sigma]").fill(str(sigma))
        self.root.locator("input[name=seed]").fill(str(seed))
        self.root.locator("button").click()
        self.page.wait_for_selector(f"{PANEL} [data-psnr], {PANEL}[data-error]", timeout=timeout)
        error = self.root.get_attribute("data-error")
        assert error is None, error
        result = self.root.locator("[data-psnr]")
        return float(result.get_attribute("data-psnr")), float(result.get_attribute("data-network-ms"))

    def close(self):
        self.page.close()
        assert not self.errors, self.errors
        assert not self.outside, f"requests to other hosts: {self.outside}"


def png_bytes(array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def torch_psnr(model_name, clean, sigma):
    """The book's protocol (nnimaging.evaluate) on one image: PyTorch's denoised PSNR in dB."""
    report = evaluate_denoiser(load_pretrained(model_name), [clean], sigma, seed=0)
    return report["images"][0]["psnr"]


# ------------------------------------------------------------------------------------ tests
browser_test = pytest.mark.browser


@browser_test
def test_panel_has_the_contract_and_a_label_for_every_control(browser, panel_site):
    _, base, path = panel_site
    panel = Panel(browser, base, path)
    root = panel.root
    assert root.locator("input[type=file]").count() == 1
    assert root.locator("input[type=range][name=sigma]").count() == 1
    sigma = root.locator("input[type=range][name=sigma]")
    assert (sigma.get_attribute("min"), sigma.get_attribute("max")) == ("0", "75")
    assert root.locator("select").count() == 1 and root.locator("button").count() == 1
    values = root.locator("select option").evaluate_all("os => os.map(o => o.value)")
    assert values[:2] == ["unet-denoise", "dncnn-s25"]
    for control in root.locator("input, select").all():
        control_id = control.get_attribute("id")
        assert control_id and root.locator(f"label[for='{control_id}']").count() == 1, control_id
    assert "Set12 01.png, 256 × 256" in root.locator(".nnimaging-denoiser-source").inner_text()
    assert root.locator("[data-image=clean] img").get_attribute("alt")
    # keyboard: Tab reaches every control, in order, and the button runs on Enter (tested below)
    root.locator("input[type=file]").focus()
    reached = []
    for _ in range(4):
        panel.page.keyboard.press("Tab")
        reached.append(panel.page.evaluate("() => document.activeElement.name || document.activeElement.tagName"))
    assert reached == ["sigma", "seed", "model", "run"], reached
    panel.close()


@browser_test
@pytest.mark.parametrize("model_name, sigma", [("unet-denoise", 25), ("dncnn-s25", 25), ("unet-denoise", 50)])
def test_uploaded_image_is_denoised_with_the_psnr_of_pytorch(browser, panel_site, model_name, sigma):
    _, base, path = panel_site
    clean = load_images("set12")[4]  # 05.png, 256 x 256, not the default test image
    panel = Panel(browser, base, path)
    panel.upload("05.png", fetch("set12/05.png").read_bytes())
    panel.page.wait_for_function("() => document.querySelector('.nnimaging-denoiser-source')"
                                 ".textContent.includes('05.png')")
    assert "256 × 256 pixels, used as it is" in panel.root.locator(".nnimaging-denoiser-source").inner_text()
    got, _ = panel.run(model_name, sigma)
    expected = torch_psnr(model_name, clean, sigma)
    print(f"browser denoiser, Set12 05.png, {model_name}, σ={sigma}: browser {got:.3f} dB, PyTorch {expected:.3f} dB")
    assert abs(got - expected) < PSNR_TOLERANCE_DB, f"{model_name} σ={sigma}: browser {got:.3f} dB, PyTorch {expected:.3f} dB"
    for key in ("noisy", "denoised", "removed"):
        image = panel.root.locator(f"[data-image={key}] img")
        assert image.is_visible() and "dB" in image.get_attribute("alt") or key == "removed", key
    assert f"{got:.2f}" in panel.status()
    panel.close()


@browser_test
def test_same_seed_same_result_and_colour_images_are_greyed_and_scaled(browser, panel_site):
    _, base, path = panel_site
    panel = Panel(browser, base, path)
    first, _ = panel.run("dncnn-s25", 30, seed=7)
    again, _ = panel.run("dncnn-s25", 30, seed=7)
    other, _ = panel.run("dncnn-s25", 30, seed=8)
    assert first == again and other != first
    rows, cols = np.mgrid[0:500, 0:700]
    colour = np.stack([rows * 255 // 499, cols * 255 // 699, (rows + cols) * 255 // 1198], -1).astype(np.uint8)
    panel.upload("photo.png", png_bytes(colour))
    panel.page.wait_for_function("() => document.querySelector('.nnimaging-denoiser-source')"
                                 ".textContent.includes('photo.png')")
    source = panel.root.locator(".nnimaging-denoiser-source").inner_text()
    assert "colour converted to grey" in source and "scaled down from 700 × 500 to 512 × 366" in source, source
    psnr, _ = panel.run("dncnn-s25", 25)
    assert np.isfinite(psnr)
    assert panel.root.locator("[data-image=denoised] img").evaluate("i => [i.naturalWidth, i.naturalHeight]") == [512, 366]
    panel.close()


@browser_test
@pytest.mark.parametrize("name, data, message", [
    ("notes.png", b"this is a text file, not a picture\n" * 20, "is not an image"),
    ("empty.png", b"", "is empty"),
    ("huge.png", "huge", "too large"),
    ("tiny.png", "tiny", "at least 16 pixels"),
])
def test_bad_files_get_a_clear_message_and_no_page_error(browser, panel_site, name, data, message):
    if data == "huge":  # 12000 x 12000 (144 megapixels) of zeros: a small file, a huge image
        data = png_bytes(np.zeros((12000, 12000), np.uint8))
    elif data == "tiny":
        data = png_bytes(np.zeros((8, 40), np.uint8))
    _, base, path = panel_site
    panel = Panel(browser, base, path)
    panel.upload(name, data)
    panel.page.wait_for_selector(f"{PANEL}[data-error]", timeout=30000)
    text = panel.status()
    assert message in text and name in text and "previous image is kept" in text, text
    assert panel.root.locator("[data-psnr]").count() == 0
    psnr, _ = panel.run("dncnn-s25", 25)  # the panel still works, on the test image
    assert np.isfinite(psnr) and panel.root.get_attribute("data-error") is None
    panel.close()


@browser_test
def test_page_stays_responsive_while_the_network_runs(browser, panel_site):
    _, base, path = panel_site
    panel = Panel(browser, base, path)
    panel.upload("08.png", fetch("set12/08.png").read_bytes())  # 512 x 512: a long run
    panel.page.wait_for_function("() => document.querySelector('.nnimaging-denoiser-source')"
                                 ".textContent.includes('08.png')")
    panel.page.evaluate("""() => {
        window.ticks = [];
        window.ticker = setInterval(() => window.ticks.push(performance.now()), 10);
    }""")
    panel.root.locator("button").click()
    assert panel.root.locator("button").is_disabled()
    assert panel.root.get_attribute("aria-busy") == "true"
    typed = panel.page.evaluate("() => { const s = document.querySelector('input[name=seed]');"
                                "s.value = '123'; return s.value; }")  # the page reacts while it runs
    assert typed == "123"
    panel.page.wait_for_selector(f"{PANEL} [data-psnr]", timeout=120000)
    gaps = panel.page.evaluate("""() => { clearInterval(window.ticker);
        const t = window.ticks; return {n: t.length, span: t[t.length - 1] - t[0],
        max: Math.max(...t.slice(1).map((x, i) => x - t[i]))}; }""")
    network_ms = float(panel.root.locator("[data-psnr]").get_attribute("data-network-ms"))
    assert gaps["span"] > 0.8 * network_ms  # the ticks cover the run
    assert gaps["max"] < 250, f"the main thread was blocked for {gaps['max']:.0f} ms during the run"
    panel.close()


@browser_test
def test_latency_and_download_size_are_within_budget(browser, panel_site, capsys):
    html, base, path = panel_site
    panel = Panel(browser, base, path)  # the default test image: Set12 01.png, 256 x 256
    on_load = {p: (html / p).stat().st_size for p in panel.fetched if "_static/denoiser/" in p}
    times = [panel.run("unet-denoise", 25)[1] for _ in range(3)]
    added = {p: (html / p).stat().st_size for p in panel.fetched if "_static/denoiser/" in p}
    panel.close()
    gz = {p: len(gzip.compress((html / p).read_bytes(), 6)) for p in added}
    report = {"unet-denoise 256x256 network ms (first, then warm)": times,
              "bytes on page load": sum(on_load.values()), "bytes after first run": sum(added.values()),
              "gzip bytes after first run": sum(gz.values()), "files": added}
    with capsys.disabled():
        print("\nbrowser denoiser:", json.dumps(report, indent=1))
    assert min(times[1:]) / 1000 <= LATENCY_BUDGET_S, times
    assert set(on_load) <= {k for k in on_load if k.endswith((".js", ".css", ".json", ".png"))}
    assert sum(on_load.values()) < 200_000  # the runtime and networks load only on the first run
    assert any(k.endswith(".wasm") for k in added) and any(k.endswith("unet-denoise.onnx") for k in added)
    assert sum(added.values()) < 25e6


# ------------------------------------------------------------------------------------ the build step
def test_panel_html_refuses_third_party_weights_and_bad_settings():
    assert 'name="sigma"' in webdenoiser.panel_html()
    with pytest.raises(webdenoiser.AssetError, match="third-party"):
        webdenoiser.panel_html(["zhang2017-dncnn-b"])
    with pytest.raises(ValueError, match="sigma"):
        webdenoiser.panel_html(sigma=80)


def test_ort_web_tarball_is_verified_and_a_failed_download_is_explained(tmp_path, monkeypatch):
    cached = tmp_path / "npm" / f"onnxruntime-web-{webdenoiser.ORT_WEB_VERSION}.tgz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not the tarball")
    bad = tmp_path / "bad.tgz"
    bad.write_bytes(b"an altered tarball")
    monkeypatch.setattr(webdenoiser, "ORT_WEB_URL", bad.as_uri())
    with pytest.raises(webdenoiser.AssetError, match="SHA-512") as info:
        webdenoiser.ort_web_tarball(tmp_path)
    assert "deleted and not used" in str(info.value)
    assert not cached.exists() and list(cached.parent.iterdir()) == []  # nothing wrong is kept
    monkeypatch.setattr(webdenoiser, "ORT_WEB_URL", (tmp_path / "missing.tgz").as_uri())
    with pytest.raises(webdenoiser.AssetError, match="downloading .* failed") as info:
        webdenoiser.ort_web_tarball(tmp_path)
    assert "npm pack onnxruntime-web@" in str(info.value)


def test_runtime_files_come_from_the_verified_tarball(tmp_path, monkeypatch):
    """The site gets only the WebAssembly backend and the licence; a second install reuses them."""
    real = webdenoiser.ort_web_tarball()  # the cache that the site builds use (downloaded if missing)
    monkeypatch.setattr(webdenoiser, "ORT_WEB_URL", (tmp_path / "never-fetched.tgz").as_uri())
    info = webdenoiser._install_runtime(tmp_path / "ort", real.parent.parent)
    names = sorted(p.name for p in (tmp_path / "ort").iterdir())
    assert names == sorted([*webdenoiser.ORT_WEB_FILES, "LICENSE.txt", "VERSION"])
    assert "MIT License" in (tmp_path / "ort" / "LICENSE.txt").read_text()
    assert info["version"] == webdenoiser.ORT_WEB_VERSION
    assert sum(info["bytes"].values()) < 16e6


@browser_test
@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_panel_passes_axe_before_and_after_a_run_and_an_error(browser, panel_site, color_scheme):
    """axe-core (tests/vendor) on the panel only: the tiny site lacks the book's theme fixes."""
    _, base, path = panel_site
    panel = Panel(browser, base, path)
    panel.page.emulate_media(color_scheme=color_scheme)
    panel.page.add_script_tag(path=str(ROOT / "tests" / "vendor" / "axe.min.js"))
    scan = """async () => (await axe.run(document.querySelector('[data-nnimaging-denoiser]'),
        {resultTypes: ['violations']})).violations.filter(v => ['serious', 'critical'].includes(v.impact))
        .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""
    problems = panel.page.evaluate(scan)
    panel.run("dncnn-s25", 25)
    problems += panel.page.evaluate(scan)
    panel.upload("empty.png", b"")
    panel.page.wait_for_selector(f"{PANEL}[data-error]")
    problems += panel.page.evaluate(scan)
    panel.close()
    assert not problems, problems
