"""Reproducibility setup, source display and the sphinx glue."""

import os

import numpy as np
import pytest
import torch

import nnimaging
from nnimaging import notebook, sphinxext
from nnimaging.approximation import rect


def test_setup_makes_random_draws_repeat():
    nnimaging.setup(seed=3)
    first = (np.random.rand(3), torch.rand(3))
    nnimaging.setup(seed=3)
    second = (np.random.rand(3), torch.rand(3))
    np.testing.assert_array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    assert torch.get_num_threads() == 1
    assert torch.are_deterministic_algorithms_enabled()
    with pytest.raises(ValueError, match="figure_format"):
        nnimaging.setup(figure_format="jpg")


def test_show_source_displays_the_code_that_runs():
    md = nnimaging.show_source(rect).data
    assert md.startswith("```python\ndef rect(") and md.endswith("```")
    with pytest.raises(TypeError, match="cannot show the source"):
        nnimaging.show_source(3)


class FakeScript:
    def __init__(self, filename, **attributes):
        self.filename, self.attributes = filename, attributes


def test_sphinx_glue_drops_repeated_scripts_and_widget_state():
    scripts = [FakeScript("a.js"), FakeScript(None, body="const X = 1"), FakeScript("", body="const X = 1"),
               FakeScript(None, type="application/vnd.jupyter.widget-state+json", body="{}"),
               FakeScript("a.js", defer="defer")]
    context = {"script_files": scripts}
    sphinxext._clean_scripts(None, "page", "page.html", context, None)
    assert [(s.filename, s.attributes) for s in context["script_files"]] == [
        ("a.js", {}), (None, {"body": "const X = 1"}), ("a.js", {"defer": "defer"})]


def test_offline_mathjax_is_installed():
    assert (sphinxext.mathjax_source() / "tex-chtml.js").stat().st_size > 100_000


def test_execute_stores_outputs_without_widget_state(tmp_path):
    import nbformat

    from nnimaging.__main__ import main

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import ipywidgets\nipywidgets.IntSlider(3)"),
                nbformat.v4.new_code_cell("print(6 * 7)")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    main(["execute", str(path)])
    done = nbformat.read(path, as_version=4)
    assert done.cells[1].outputs[0]["text"] == "42\n"
    assert "widgets" not in done.metadata


def test_pin_cpu_kernels_sets_the_portable_environment_once(monkeypatch):
    from nnimaging import notebook

    monkeypatch.setattr(notebook.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(notebook, "_has_avx2", lambda: True)
    env = {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}  # a user's own choice is kept
    added = notebook.pin_cpu_kernels(env)
    assert env == {**notebook.PORTABLE_CPU_ENV, "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
    assert "MKL_ENABLE_INSTRUCTIONS" not in added and added["ATEN_CPU_CAPABILITY"] == "avx2"
    assert notebook.pin_cpu_kernels(env) == {}
    monkeypatch.setattr(notebook.platform, "machine", lambda: "arm64")
    assert notebook.pin_cpu_kernels(other := {}) == {} and other == {}


def test_pinned_processes_run_numpy_and_torch_on_avx2_code():
    import os
    import subprocess
    import sys

    from nnimaging import notebook

    env = {k: v for k, v in os.environ.items() if k not in notebook.PORTABLE_CPU_ENV}
    if not notebook.pin_cpu_kernels(env):
        pytest.skip("not an x86-64 processor with AVX2")
    probe = ("import torch\n"
             "from numpy.lib.introspect import opt_func_info\n"
             "log = opt_func_info(func_name='^log$', signature='float64')['log']['dd']['current']\n"
             "print(torch.backends.cpu.get_cpu_capability(), log)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["AVX2", "X86_V3"], out.stdout + out.stderr  # X86_V3: AVX2 and FMA
    assert out.stderr == ""  # no warning about an unknown feature or capability


def test_setup_takes_the_thread_count_from_nnimaging_threads(monkeypatch):
    import torch

    from nnimaging import notebook

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("NNIMAGING_THREADS", "2")
        notebook.setup()
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("NNIMAGING_THREADS")
        notebook.setup()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("NNIMAGING_THREADS", "0")
        with pytest.raises(ValueError, match="NNIMAGING_THREADS"):
            notebook.setup()
    finally:
        torch.set_num_threads(before)


def test_glue_writes_what_myst_nb_reads_with_rounded_floats(monkeypatch):
    import IPython.display

    from nnimaging import notebook

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, **kw: shown.append((data, kw)))
    assert notebook.glue("gain", 0.123456789) is None, "no Out[] when a cell ends with a glue call"
    notebook.glue("steps", np.int64(5277))
    notebook.glue("name", "BM3D")
    datas = [d for d, _ in shown]
    assert datas == [{"application/papermill.record/text/plain": "0.1235"},
                     {"application/papermill.record/text/plain": "5277"},
                     {"application/papermill.record/text/plain": "'BM3D'"}]
    assert shown[0][1] == {"raw": True, "metadata": {"scrapbook": {"name": "gain",
                                                                  "mime_prefix": "application/papermill.record/"}}}
    myst_nb = pytest.importorskip("myst_nb")  # the same bundle myst-nb's own glue writes
    monkeypatch.setattr("myst_nb.ext.glue.ipy_display", lambda data, **kw: shown.append((data, kw)))
    myst_nb.glue("gain", 0.1235, display=False)
    assert shown[-1] == shown[0]
    with pytest.raises(ValueError, match="identifier"):
        notebook.glue("not a name", 1.0)
    with pytest.raises(TypeError, match="number or a string"):
        notebook.glue("x", [1, 2])


def test_figures_use_matplotlib_s_own_fonts_even_when_the_system_has_a_copy(tmp_path, monkeypatch):
    """A system DejaVu Sans (another version, other glyph numbers) must not reach the figures."""
    import io
    import shutil

    import matplotlib as mpl
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    manager = font_manager.fontManager
    monkeypatch.setattr(manager, "ttflist", list(manager.ttflist))
    bundled = os.path.join(mpl.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")
    system_copy = tmp_path / "DejaVuSans.ttf"  # stands for /usr/share/fonts/.../DejaVuSans.ttf
    shutil.copy(bundled, system_copy)
    manager.addfont(str(system_copy))
    manager.ttflist.insert(0, manager.ttflist.pop())  # first in the list: what findfont picks on a tie
    manager._findfont_cached.cache_clear()
    assert font_manager.findfont("DejaVu Sans") == str(system_copy)

    assert "DejaVu Sans" in notebook.use_bundled_fonts()
    assert os.path.realpath(font_manager.findfont("DejaVu Sans")) == os.path.realpath(bundled)
    fig = Figure()
    fig.add_subplot().plot([-3, 3], [-1, 1])
    out = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "x"}):
        fig.savefig(out, format="svg")
    minus = font_manager.get_font(bundled).get_char_index(0x2212)
    assert f"DejaVuSans-{minus:x}" in out.getvalue()  # the minus of a tick label, from the bundled font
    manager._findfont_cached.cache_clear()  # monkeypatch restores the list; forget what it found
