"""The student notebooks (``python -m nnimaging students``), checked in both directions.

* The committed notebooks in ``students/`` are what the chapters give now (``--check``).
* For every exercise with checks, the chapter's reference solution passes them, and the student's
  untouched cell fails: with ``NotImplementedError`` as written, and, without that line, the checks
  alone fail with an ``AssertionError`` or a ``NameError`` for a name the student has to define (a
  ``NameError`` for anything else would mean the notebook's setup misses a cell).

The cells run in-process (``exec``), in one namespace per chapter prepared by the setup cells the
generator keeps, in the chapter's order: about a minute of CPU for all chapters.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib
import pytest

from nnimaging import students
from nnimaging.checksplit import MARKER
from nnimaging.students import Task

# The exercises run in this process: no window. matplotlib.use, not MPLBACKEND: an environment
# variable set here would reach every kernel nbval starts later and take their figures away.
matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]

SKIP: dict[str, str] = {
    # "Exercise N.M": "why it cannot run here",   (none so far: every exercise runs in seconds)
}


# ---------------------------------------------------------------------------------------------
# (a) the committed student notebooks are up to date
# ---------------------------------------------------------------------------------------------

def test_committed_student_notebooks_are_up_to_date():
    try:
        students.main(["--check"], root=ROOT)
    except students._checks.UsageError as err:   # the message says which files and what to run
        pytest.fail(str(err))


def test_student_notebooks_have_no_outputs_and_one_per_chapter_with_exercises():
    files = sorted((ROOT / "students").glob("*.ipynb"))
    stems = [p.stem for p in students.chapter_paths()]
    assert files and all(p.stem in stems for p in files)
    for path in files:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            assert cell.get("outputs", []) == [] and cell.get("execution_count") is None


def test_the_problem_session_tasks_are_included():
    chapter = students.read_chapter(ROOT / "chapters" / "03_backpropagation.ipynb")
    titles = [item.title for item in chapter.exercises]
    for task in students.TASKS:
        assert task.title in titles


# ---------------------------------------------------------------------------------------------
# (b) reference solutions pass their checks; untouched gaps fail them
# ---------------------------------------------------------------------------------------------

def _exec(code: str, namespace: dict) -> None:
    import matplotlib.pyplot as plt

    try:
        exec(compile(code, "<student cell>", "exec"), namespace)
    finally:
        plt.close("all")


def _outcome(code: str, namespace: dict) -> BaseException | None:
    try:
        _exec(code, namespace)
    except Exception as err:  # noqa: BLE001 - the kind of failure is what is tested
        return err
    return None


def _with_module_helpers(namespace: dict, module: str) -> dict:
    """The chapter shows a package object's source: let it find its module's private helpers."""
    import importlib

    for name, value in vars(importlib.import_module(module)).items():
        if name.startswith("_") and not name.startswith("__"):
            namespace.setdefault(name, value)
    return namespace


def run_chapter(chapter) -> tuple[list[str], list[str]]:
    """Run a chapter's student notebook both ways; return (problems, what was run)."""
    problems, log = [], []
    namespace: dict = {"__name__": "__main__"}
    for item in chapter.items:
        start = time.perf_counter()
        if item.kind == "setup":
            error = _outcome(item.source, namespace)
            if error:
                problems.append(f"setup cell {item.cell} failed: {error!r}")
                return problems, log
            continue
        label = item.label
        if item.kind == "pen-and-paper":
            log.append(f"{label}: pen and paper, no code")
            continue
        if label in SKIP:
            log.append(f"{label}: skipped ({SKIP[label]})")
            continue
        split = item.split
        # the untouched student cell stops at its NotImplementedError
        error = _outcome(students.gap_code(item), dict(namespace))
        if not isinstance(error, NotImplementedError):
            problems.append(f"{label}: the untouched gap gave {error!r}, not NotImplementedError")
        # without that line, the checks alone fail on a missing answer or a wrong one
        if split.checks.strip():
            bare = {k: v for k, v in namespace.items() if k not in split.todo}
            error = _outcome(f"{split.givens}\n{split.checks}", bare)
            if isinstance(error, NameError) and getattr(error, "name", None) in split.todo:
                pass
            elif not isinstance(error, AssertionError):
                problems.append(f"{label}: the checks without a solution gave {error!r}: they do "
                                f"not test the solution (or the setup misses a cell)")
        # the reference solution passes the checks (and leaves its names for later cells)
        if item.reference_module:
            _with_module_helpers(namespace, item.reference_module)
        error = _outcome(split.reference, namespace)
        if error:
            problems.append(f"{label}: the reference solution failed its checks: {error!r}")
        log.append(f"{label}: {item.handling}, {time.perf_counter() - start:.1f} s")
    return problems, log


CHAPTERS = [p for p in students.chapter_paths() if p.exists()]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem[:2] for p in CHAPTERS])
def test_reference_solutions_pass_and_gaps_fail(path, record_property):
    chapter = students.read_chapter(path)
    if not chapter.exercises:
        pytest.skip(f"{path.stem} has no exercises")
    problems, log = run_chapter(chapter)
    record_property("exercises", "; ".join(log))      # how each was handled, and its time
    assert not problems, "\n".join(problems + ["", "ran:"] + log)


# ---------------------------------------------------------------------------------------------
# a tiny book: slicing, tasks, pen and paper, --check
# ---------------------------------------------------------------------------------------------

def _code(src, tags=()):
    return {"cell_type": "code", "execution_count": None, "id": "x", "metadata": {"tags": list(tags)},
            "outputs": [], "source": src}


def _md(src):
    return {"cell_type": "markdown", "id": "x", "metadata": {}, "source": src}


SOLUTION_START = "```{{solution-start}} {}\n:class: dropdown\n```\n"
SOLUTION_END = "```{solution-end}\n```\n"


def _tiny_book(root: Path, extra_cells=()):
    (root / "chapters").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n  - chapters:\n"
                                   "      - file: chapters/01_tiny\n")
    cells = [
        _md("# Tiny chapter\n"),
        _code("import math\nimport nnimaging\nnnimaging.setup()\n"),
        _code("unused = 1\n"),
        _code("base = 3\n"),
        _code("values = []\n"),
        _code("values.append(base)\n"),
        _code("plot(values)\n"),
        _md("## Exercises\n\n```{exercise} square\n:label: ex-1-1\nSquare it.\n```\n"),
        _md(SOLUTION_START.format("ex-1-1")),
        _code("square = base ** 2 + 0 * len(values)\nassert square == 9\n"),
        _md(SOLUTION_END),
        _md("```{exercise} prove it, pen and paper\n:label: ex-1-2\nProve.\n```\n"),
        _md(SOLUTION_START.format("ex-1-2") + "\nThe proof.\n\n" + SOLUTION_END),
        *extra_cells,
    ]
    nb = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4,
          "nbformat_minor": 5}
    (root / "chapters" / "01_tiny.ipynb").write_text(json.dumps(nb))


def test_setup_keeps_what_the_exercises_need(tmp_path):
    _tiny_book(tmp_path)
    chapter = students.read_chapter(tmp_path / "chapters" / "01_tiny.ipynb", tasks=())
    kept = [item.source.splitlines()[0] for item in chapter.items if item.kind == "setup"]
    assert kept == ["import math", "base = 3", "values = []", "values.append(base)"]
    kinds = [(item.kind, item.title) for item in chapter.exercises]
    assert kinds == [("exercise", "Exercise 1.1: square"),
                     ("pen-and-paper", "Exercise 1.2: prove it, pen and paper")]
    assert chapter.exercises[0].statement == "### Exercise 1.1: square\n\nSquare it."
    assert chapter.exercises[0].source.startswith("square = base ** 2")
    problems, _ = run_chapter(chapter)
    assert not problems


def test_tasks_listed_or_tagged(tmp_path):
    _tiny_book(tmp_path, [_md("Write `cube`.\n"), _code("def cube(v):\n    return v ** 3\n"
                                                         f"{MARKER}\nassert cube(2) == 8\n",
                                                         tags=[students.TASK_TAG]),
                          _code("double = 2 * base\nprint(double)\n")])
    task = Task("01_tiny", "Task: double", "Double it.", ("double = 2 * base",),
                "assert double == 6\n")
    chapter = students.read_chapter(tmp_path / "chapters" / "01_tiny.ipynb", tasks=(task,))
    titles = [item.title for item in chapter.exercises]
    assert titles[-2:] == ["Write `cube`.", "Task: double"]
    assert not run_chapter(chapter)[0]
    bad = Task("01_tiny", "Task", "", ("base",), "")
    with pytest.raises(ValueError, match="expected exactly one"):
        students.read_chapter(tmp_path / "chapters" / "01_tiny.ipynb", tasks=(bad,))


def test_check_reports_stale_and_extra_notebooks(tmp_path, monkeypatch):
    _tiny_book(tmp_path)
    monkeypatch.setattr(students, "TASKS", ())
    assert students.main([], root=tmp_path) == 0
    written = tmp_path / "students" / "01_tiny.ipynb"
    nb = json.loads(written.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] for c in code)
    assert "raise NotImplementedError" in "".join(code[-1]["source"])
    assert students.main(["--check"], root=tmp_path) == 0
    written.write_text(written.read_text() + " ")
    (tmp_path / "students" / "99_gone.ipynb").write_text("{}")
    with pytest.raises(students._checks.UsageError, match="01_tiny.ipynb .*99_gone.ipynb"):
        students.main(["--check"], root=tmp_path)


def test_bad_exercise_markup_is_a_one_line_error_naming_the_chapter(tmp_path):
    _tiny_book(tmp_path, [_md("```{exercise} no label\nText.\n```\n")])
    with pytest.raises(students._checks.UsageError, match=r"01_tiny.ipynb, cell 13: .*:label: ex-N-M"):
        students.main(["--check"], root=tmp_path)
