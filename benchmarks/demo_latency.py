"""How long a slider move takes to redraw a demo, on the static page and in a kernel.

    python benchmarks/demo_latency.py            # needs the built book and /usr/bin/chromium

Static page: for every demo of every built page, each control is moved through up to 20 positions
by input events; the time from the event to the next painted frame (two animation frames) is
recorded, and separately the runtime's own compute + SVG time. Kernel: the same demos built in
Python and shown as a chapter shows them (the page's version first, whose precomputed frames a
demo without a twin remembers), each control moved through up to 20 positions with
``LiveDemo.set`` (compute or lookup, matplotlib draw and PNG encoding; the widget message to the
browser is not included). Prints medians per demo and overall. Goals: 50 ms static, 150 ms
kernel.
"""

from __future__ import annotations

import functools
import http.server
import statistics
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

JS = """async ([i, maxMoves]) => {
  const el = document.querySelectorAll('div.nnimaging-demo')[i], d = el.nnimaging, out = [];
  const frame = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  for (const input of el.querySelectorAll('[data-control]')) {
    const n = input.tagName === 'SELECT' ? input.options.length : +input.max + 1;
    const start = +input.value;
    for (let k = 1; k <= Math.min(n - 1, maxMoves); k++) {
      const t0 = performance.now();
      input.value = String((start + k) % n);
      input.dispatchEvent(new Event('input'));
      const computed = d.lastRedrawMs;
      await frame();
      out.push([performance.now() - t0, computed]);
    }
    input.value = String(start); input.dispatchEvent(new Event('input'));
  }
  return {name: el.dataset.demo, times: out};
}"""


def static_latency(max_moves: int = 20) -> dict[str, tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        for html in sorted(SITE.glob("chapters/*.html")):
            if "nnimaging-demo" not in html.read_text(encoding="utf-8"):
                continue
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/chapters/{html.name}")
            for i in range(page.locator("div.nnimaging-demo").count()):
                r = page.evaluate(JS, [i, max_moves])
                results[r["name"]] = (statistics.median(t[0] for t in r["times"]),
                                      statistics.median(t[1] for t in r["times"]))
        browser.close()
    server.shutdown()
    return results


def kernel_latency(names, max_moves: int = 20) -> dict[str, float]:
    from nnimaging.demo import build

    results = {}
    for name in names:
        demo = build(name)
        demo.to_html()  # as in a chapter: the cell's output also carries the page's version
        live = demo.widget()
        times = []
        for control in demo.controls:
            positions = control.positions
            start = control.index
            for k in range(1, min(len(positions), max_moves + 1)):
                live.set(**{control.name: positions[(start + k) % len(positions)]})
                times.append(live.last_redraw_s * 1000)
            live.set(**{control.name: positions[start]})
        results[name] = statistics.median(times)
    return results


def main():
    static = static_latency()
    kernel = kernel_latency(sorted(static))
    print(f"{'demo':34s} {'static: to paint':>17s} {'(compute+SVG)':>14s} {'kernel':>9s}")
    for name in sorted(static):
        paint, compute = static[name]
        print(f"{name:34s} {paint:14.1f} ms {compute:11.1f} ms {kernel[name]:6.1f} ms")
    print(f"{'median over demos':34s} {statistics.median(v[0] for v in static.values()):14.1f} ms "
          f"{statistics.median(v[1] for v in static.values()):11.1f} ms "
          f"{statistics.median(kernel.values()):6.1f} ms")


if __name__ == "__main__":
    main()
