"""Facts about the stored chapters that every reader relies on (no execution needed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from nnimaging.exercises import read_exercises

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = (ROOT / "_toc.yml").read_text()


def code_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return nb, [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_every_chapter_is_in_the_table_of_contents_and_back():
    assert CHAPTERS, "no chapters found"
    in_toc = set(re.findall(r"file:\s*(chapters/\S+)", TOC))
    assert in_toc == {f"chapters/{p.stem}" for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_the_colab_install_cell_and_setup(path):
    nb, cells = code_cells(path)
    assert nb["metadata"]["kernelspec"]["name"] == "python3"  # the kernel Binder and Colab have
    install = "".join(cells[0]["source"])
    assert "remove-cell" in cells[0]["metadata"].get("tags", [])
    url = CONFIG["repository"]["url"]
    assert f"git+{url}" in install, "the install cell must point at _config.yml's repository"
    assert "nnimaging.setup()" in "".join(cells[1]["source"])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    _, cells = code_cells(path)
    for i, cell in enumerate(cells):
        assert cell.get("outputs") is not None
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"cell {i} stored an error"
            assert not (out["output_type"] == "stream" and out["name"] == "stderr"), \
                f"cell {i} wrote to stderr: {''.join(out['text'])[:200]}"
            data = out.get("data", {})
            shown = "image/svg+xml" in data or "image/png" in data or "text/html" in data
            # text/plain is what a page shows only when the output has nothing richer
            text = ("" if shown else "".join(data.get("text/plain", ""))) + "".join(out.get("text", ""))
            assert not re.search(r"<function |<Figure size|<matplotlib\.\w+|at 0x[0-9a-f]+>", text), \
                f"cell {i} prints an object repr: {text[:120]}"
            if "image/svg+xml" in data or "image/png" in data:
                alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
                assert alt.strip(), f"cell {i} shows a figure without alt text"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_are_numbered_directives_with_a_hidden_solution(path):
    """sphinx-exercise markup: {exercise} labelled ex-N-M (N the chapter, M = 1, 2, ...), each with a
    gated solution in a dropdown (closed on the site until the reader opens it); no old markup."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert not re.search(r"\{admonition\}\s*Exercise", text), "an exercise in the old admonition markup"
    exercises = read_exercises(cells)   # refuses a missing label, solution or solution-end
    chapter = int(path.name[:2])
    assert [(e.chapter, e.number) for e in exercises] == [(chapter, m) for m in range(1, len(exercises) + 1)]
    for e in exercises:
        assert e.title.strip(), f"{e.label} has no title"
        assert e.solution_options.get("class") == "dropdown", f"{e.label}: the solution is not a dropdown"
        assert e.solution_cells or e.solution_markdown.strip(), f"{e.label}: the solution is empty"
