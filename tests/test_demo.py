"""The demo mechanism: controls, specs, frames, the kernel widget and the registry."""

import itertools
import json
import re

import numpy as np
import pytest

import nnimaging.demos  # noqa: F401  (registers every demo)
from nnimaging.demo import (MAX_FRAMES, Choice, Demo, Grid, Image, JsTwin, Line, Panel, Slider,
                            Text, build, fill_template, format_value, registry)


def square(a, kind="up"):
    x = np.arange(5.0)
    return {"x": x, "y": a * x**2 if kind == "up" else -a * x**2, "label": f"a={a}"}


def small_demo(**kwargs):
    return Demo("test.square", "Square", [Slider("a", 0, 2, 0.5, 1), Choice("kind", ("up", "down"), "up")],
                square, [Panel([Line("x", "y"), Text("{a:.1f} {kind}")])], alt="a parabola", **kwargs)


def test_slider_positions_are_exact_and_ints_stay_ints():
    assert Slider("s", 0.0, 1.0, 0.05, 0.2).positions[:4] == [0.0, 0.05, 0.1, 0.15]
    assert Slider("s", 0.0, 1.0, 0.05, 0.2).positions[-1] == 1.0
    assert len(Slider("s", 0.0, 1.0, 0.05, 0.2).positions) == 21
    assert Slider("w", 1, 200, 1, 8).positions[:3] == [1, 2, 3]
    assert all(isinstance(v, int) for v in Slider("w", 1, 200, 1, 8).positions)
    assert Slider("s", 0.0, 1.0, 0.1, 0.3).index == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="bad name", min=0, max=1, step=0.1, value=0), "identifier"),
    (dict(name="s", min=1, max=0, step=0.1, value=0.5), "min < max"),
    (dict(name="s", min=0, max=1, step=0.3, value=0.3), "multiple of step"),
    (dict(name="s", min=0, max=1, step=0.1, value=2), "outside"),
    (dict(name="s", min=0, max=1, step=0.1, value=0, fmt=".2g"), "fmt"),
])
def test_slider_rejects_bad_settings_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Slider(**kwargs)


def test_choice_checks_its_value():
    assert Choice("k", ["a", "b"], "b").index == 1
    with pytest.raises(ValueError, match="not in"):
        Choice("k", ["a", "b"], "c")


@pytest.mark.parametrize("value, spec, text", [
    (3.14159, ".2f", "3.14"), (-0.5, ".3f", "-0.500"), (12345.678, ".1e", "1.2e+04"),
    (0.256, ".1%", "25.6%"), (7.6, "d", "8"), (4, "", "4"), (2.0, "", "2"), (0.25, "", "0.25"),
    ("ReLU", ".2f", "ReLU"), (float("nan"), ".2f", ""),
])
def test_format_value_implements_the_subset_the_browser_knows(value, spec, text):
    assert format_value(value, spec) == text


def test_templates_reject_format_specs_the_browser_cannot_render():
    with pytest.raises(ValueError, match="unsupported format spec"):
        Text("{a:.3g}")
    assert fill_template("N = {n:d}, err {e:.2f}", {"n": 3, "e": 0.123}) == "N = 3, err 0.12"
    with pytest.raises(KeyError, match="did not return"):
        fill_template("{missing}", {})


def test_frames_cover_every_combination_in_the_runtime_order():
    demo = small_demo()
    spec = demo.spec()
    combos = list(itertools.product([0, 0.5, 1, 1.5, 2], ["up", "down"]))
    assert len(spec["frames"]) == len(combos) == demo.n_combinations
    for frame, (a, kind) in zip(spec["frames"], combos):  # last control varies fastest
        assert frame["y"] == square(a, kind)["y"].tolist()


def test_demo_without_twin_refuses_too_many_frames():
    with pytest.raises(ValueError, match="JsTwin"):
        Demo("test.big", "Big", [Slider("a", 0, 3000, 1, 0)], square,
             [Panel([Line("x", "y")])], alt="too many")


def test_demo_needs_alt_text_and_unique_controls():
    with pytest.raises(ValueError, match="alt text"):
        Demo("t", "t", [Slider("a", 0, 1, 0.5, 0)], square, [Panel([Line("x", "y")])], alt=" ")
    with pytest.raises(ValueError, match="unique"):
        Demo("t", "t", [Slider("a", 0, 1, 0.5, 0), Slider("a", 0, 1, 0.5, 0)], square,
             [Panel([Line("x", "y")])], alt="x")


def test_images_in_frames_become_deterministic_pngs():
    def compute(t):
        return {"img": np.full((4, 6), t)}
    demo = Demo("test.img", "img", [Slider("t", 0, 1, 0.5, 0)], compute,
                [Panel([Image("img")], axes=False)], alt="gray squares")
    frames = demo.spec()["frames"]
    assert all(f["img"].startswith("data:image/png;base64,") for f in frames)
    assert frames[0]["img"] != frames[2]["img"]
    assert demo.spec() == demo.spec()


def test_html_is_deterministic_self_contained_and_safe_to_embed():
    demo = small_demo()
    html = demo.to_html()
    assert html == demo.to_html()
    payload = re.search(r'<script type="application/json" class="nnimaging-demo-spec">(.*?)</script>',
                        html, re.S).group(1)
    spec = json.loads(payload.replace("<\\/", "</"))
    assert spec["name"] == "test.square" and spec["alt"] == "a parabola"
    assert "nnimagingDemo.mountAll()" in html and "window.nnimagingDemo" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html


def test_cell_output_offers_widget_html_and_plain_text():
    bundle = small_demo()._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"}
    assert bundle["text/plain"] == "Interactive figure: Square"


def test_live_widget_redraws_through_python_compute():
    demo = small_demo()
    live = demo.widget()
    first = live.output.outputs[-1]["data"]["image/png"]
    (line,) = live.renderer.figure.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), square(1.0)["y"])
    live.set(a=2.0, kind="down")
    np.testing.assert_allclose(line.get_ydata(), square(2.0, "down")["y"])
    assert live.renderer.figure.axes[0].texts[0].get_text() == "2.0 down"
    assert live.output.outputs[-1]["data"]["image/png"] != first
    assert live.last_redraw_s > 0


def test_grid_marks_show_numbers_and_blanks_for_nan():
    def compute(i):
        values = np.arange(4.0).reshape(2, 2)
        values[1, 1] = np.nan
        return {"v": values, "mask": np.eye(2, dtype=bool)}
    demo = Demo("test.grid", "grid", [Slider("i", 0, 1, 1, 0)], compute,
                [Panel([Grid("v", fmt=".0f", highlight="mask")], axes=False)], alt="a grid")
    live = demo.widget()
    texts = [t.get_text() for t in live.renderer.figure.axes[0].texts]
    assert texts == ["0", "1", "2", ""]
    assert demo.spec()["frames"][0]["v"] == [[0.0, 1.0], [2.0, None]]


def test_js_twin_must_define_its_entry():
    with pytest.raises(ValueError, match="defines no function"):
        JsTwin.from_package("approximation.js", "noSuchFunction")


@pytest.mark.parametrize("name", sorted(registry))
def test_every_registered_demo_builds_and_follows_the_rules(name):
    demo = build(name)
    assert demo.name == name
    assert demo.alt.strip()
    if demo.js is None:
        assert demo.n_combinations <= MAX_FRAMES
    else:  # continuous demos: every slider reaches at least 20 positions
        assert all(len(c.positions) >= 20 for c in demo.controls if isinstance(c, Slider))
    result = demo()
    names = {c.name for c in demo.controls}
    for panel in demo.panels:
        for mark in panel.marks:
            for key in ("x", "y", "key", "highlight"):
                ref = getattr(mark, key, None)
                if isinstance(ref, str):
                    assert ref in result or ref in names, f"{name}: mark names missing {ref!r}"
