"""The demo mechanism: controls, specs, frames, the kernel widget and the registry."""

import itertools
import json
import re

import numpy as np
import pytest

import nnimaging.demo.core as core
from nnimaging import sphinxext
from nnimaging.demo import (MAX_FRAMES, Choice, Demo, Grid, Image, JsTwin, Line, Panel, Slider,
                            Text, build, discover, fill_template, format_value, register, registry,
                            runtime_js, strip_runtime)
from twincheck import FORMAT_TABLE

discover()  # every demo of the book, from the modules that register one


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




@pytest.mark.parametrize("value, spec, text", FORMAT_TABLE)
def test_format_value_follows_the_one_rule(value, spec, text):
    assert format_value(value, spec) == text


@pytest.mark.parametrize("spec", [".2g", "x", ".123f", "05.2f", None])
def test_format_value_rejects_specs_the_browser_lacks(spec):
    with pytest.raises(ValueError, match="use '', 'd'"):
        format_value(1.0, spec)


def test_format_value_says_what_it_cannot_format():
    with pytest.raises(TypeError, match="got list"):
        format_value([1, 2])


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


def test_html_without_the_runtime_is_the_same_demo_and_shows_its_alt_text():
    demo = small_demo()
    full, bare = demo.to_html(), demo.to_html(runtime=False)
    assert runtime_js() in full and runtime_js() not in bare
    assert strip_runtime(full) == bare
    assert bare.endswith("<script>window.nnimagingDemo&&window.nnimagingDemo.mountAll()</script>")
    assert '<p class="nnd-pending">Interactive figure: a parabola' in bare
    assert len(bare) < len(full) - 15000


def test_runtime_can_be_carried_inside_a_script_element():
    assert "</script" not in runtime_js().lower()


def test_first_demo_output_of_a_kernel_carries_the_runtime(monkeypatch):
    monkeypatch.setattr(core, "_runtime_home", [])
    monkeypatch.setattr(core, "_current_cell", lambda: None)  # nbclient and nbval send no cell id
    outputs = [small_demo()._repr_mimebundle_()["text/html"] for _ in range(3)]
    assert [runtime_js() in html for html in outputs] == [True, False, False]


def test_a_rerun_of_the_cell_that_carries_the_runtime_carries_it_again(monkeypatch):
    monkeypatch.setattr(core, "_runtime_home", [])
    cell = {"id": "a"}
    monkeypatch.setattr(core, "_current_cell", lambda: cell["id"])  # JupyterLab sends cell ids
    carries = []
    for cell["id"] in ("a", "b", "a", "b"):
        carries.append(runtime_js() in small_demo()._repr_mimebundle_()["text/html"])
    assert carries == [True, False, True, False]


def test_site_pages_load_the_runtime_once_from_the_static_folder():
    body = "<h1>t</h1>" + small_demo().to_html() + small_demo().to_html(runtime=False)
    page = sphinxext.site_body(body, "../_static/nnimaging-runtime.js")
    assert page.startswith('<script src="../_static/nnimaging-runtime.js"></script>')
    assert runtime_js() not in page and "nnimaging-runtime\">" not in page and page.count('class="nnimaging-demo"') == 2
    assert sphinxext.site_body("<p>no demo</p>", "x.js") == "<p>no demo</p>"


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


def counting_demo():
    calls = []

    def compute(a, kind):
        calls.append((a, kind))
        return square(a, kind)
    demo = Demo("test.count", "Square", [Slider("a", 0, 2, 0.5, 1), Choice("kind", ("up", "down"), "up")],
                compute, [Panel([Line("x", "y"), Text("{a:.1f} {kind}")])], alt="a parabola")
    return demo, calls


def test_a_kernel_slider_reuses_what_the_page_precomputed():
    demo, calls = counting_demo()
    demo.spec()  # the page's frames: every combination, once
    assert len(calls) == demo.n_combinations == 10
    live = demo.widget()
    live.set(a=2.0, kind="down")
    live.set(a=0.5)
    assert len(calls) == 10  # the widget looked them up
    (line,) = live.renderer.figure.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), square(0.5, "down")["y"])
    demo.spec()
    assert len(calls) == 10


def test_remembered_results_stay_within_their_byte_budget(monkeypatch):
    monkeypatch.setattr(core, "RESULT_CACHE_BYTES", 200)  # two results of 5 floats and a label
    demo, calls = counting_demo()
    for _ in range(2):
        for a in (0.0, 0.5, 1.0):
            demo.result({"a": a, "kind": "up"})
    assert calls == [(0.0, "up"), (0.5, "up"), (1.0, "up"), (1.0, "up")]


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


# --------------------------------------------------------------------------- naming and registering
def test_a_demo_is_made_with_or_without_its_name():
    parts = dict(controls=[Slider("a", 0, 2, 0.5, 1)], compute=square, panels=[Panel([Line("x", "y")])])
    named = Demo("test.named", "Square", *parts.values(), alt="a parabola")
    unnamed = Demo("Square", *parts.values(), alt="a parabola")
    by_keyword = Demo(title="Square", alt="a parabola", **parts)
    assert (named.name, named.title) == ("test.named", "Square")
    assert unnamed.name is None and unnamed.title == "Square" == by_keyword.title
    assert Demo("test.kw", title="Square", alt="x", **parts).name == "test.kw"
    with pytest.raises(TypeError, match="needs panels"):
        Demo("Square", parts["controls"], square, alt="x")
    with pytest.raises(TypeError, match="title twice"):
        Demo("Square", parts["controls"], square, parts["panels"], title="again", alt="x")


@pytest.fixture
def scratch_registry(monkeypatch):
    """An empty registry for demos registered by a test."""
    monkeypatch.setattr(core, "registry", {})
    return core.registry


def test_register_names_the_demo_and_records_its_arguments(scratch_registry):
    @register
    def parabola_demo(a: float = 1.0, kind: str = "up", points=(0, 1)) -> Demo:
        return Demo("Square", [Slider("a", 0, 2, 0.5, a), Choice("kind", ("up", "down"), kind)],
                    square, [Panel([Line("x", "y")])], alt="a parabola")

    assert parabola_demo.demo_name == "test_demo.parabola" and "test_demo.parabola" in scratch_registry
    assert parabola_demo().args == {} and parabola_demo().name == "test_demo.parabola"
    demo = parabola_demo(1.5, points=np.array([2, 3]))
    assert demo.args == {"a": 1.5, "points": [2, 3]}  # the call, as JSON: numpy and tuples too
    assert json.loads(re.search(r'"args":(\{[^}]*\})', demo.to_html()).group(1)) == demo.args
    rebuilt = core.build("test_demo.parabola", demo.args)
    assert rebuilt.defaults == demo.defaults and rebuilt.args == demo.args


def test_register_keeps_the_explicit_name_and_hand_made_arguments(scratch_registry):
    @register("test.explicit")
    def explicit_demo(a=1.0):
        return Demo("test.explicit", "Square", [Slider("a", 0, 2, 0.5, a)], square,
                    [Panel([Line("x", "y")])], alt="a parabola", args={"kept": True})

    assert scratch_registry["test.explicit"] is explicit_demo
    assert explicit_demo(a=2.0).args == {"kept": True}


def test_register_refuses_what_build_could_not_rebuild(scratch_registry):
    def made(a=1.0, name=None, note=None):
        return Demo(name, "Square", [Slider("a", 0, 2, 0.5, a)], square,
                    [Panel([Line("x", "y")])], alt="a parabola") if name else Demo(
            "Square", [Slider("a", 0, 2, 0.5, a)], square, [Panel([Line("x", "y")])], alt="x")

    with pytest.raises(ValueError, match="made a demo named 'other'"):
        register("test.mine")(made)(name="other")
    with pytest.raises(TypeError, match="not a JSON value"):
        register("test.json")(made)(note=object())
    with pytest.raises(TypeError, match="passed by keyword"):
        register("test.star")(lambda *sizes: None)
    with pytest.raises(TypeError, match="expected a Demo"):
        register("test.none")(lambda: None)()
    register("test.twice")(made)

    def made_elsewhere():
        return None
    with pytest.raises(ValueError, match="registered twice"):
        register("test.twice")(made_elsewhere)


def test_discover_finds_every_module_that_registers_a_demo():
    from pathlib import Path

    package = Path(core.__file__).resolve().parents[1]
    modules = {f"nnimaging.{p.stem}" for p in package.glob("*.py")
               if re.search(r"^\s*@register\b", p.read_text(encoding="utf-8"), re.M)}
    assert modules and modules <= {factory.__module__ for factory in registry.values()}
    with pytest.raises(KeyError, match="no demo named 'no.such'"):
        build("no.such")
