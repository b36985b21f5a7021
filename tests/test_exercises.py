"""Reading the chapters' exercise markup (``nnimaging.exercises``) and refusing what it gets wrong."""

from __future__ import annotations

import pytest

from nnimaging.exercises import ExerciseMarkupError, read_exercises

START = "```{{solution-start}} {}\n:class: dropdown\n```\n"
END = "```{solution-end}\n```\n"


def md(source):
    return {"cell_type": "markdown", "metadata": {}, "source": source}


def code(source):
    return {"cell_type": "code", "metadata": {}, "source": source, "outputs": []}


def exercise(label, title="a title", body="Do it."):
    return f"```{{exercise}} {title}\n:label: {label}\n{body}\n```\n"


def test_statement_and_gated_solution_across_cells():
    cells = [md("# Chapter\n"), code("x = 1\n"),
             md("## Exercises\n\n" + exercise("ex-4-1", "Output sizes", "Compute $n$.\n\nThen check.")),
             md(START.format("ex-4-1")), code("n = 3\n"), code("assert n == 3\n"), md(END),
             md(exercise("ex-4-2", "By hand, pen and paper")),
             md(START.format("ex-4-2") + "\nThe proof: $1 + 1 = 2$.\n\n" + END),
             code("after = 2\n")]
    first, second = read_exercises(cells)
    assert (first.label, first.name, first.heading) == ("ex-4-1", "Exercise 4.1", "Exercise 4.1: Output sizes")
    assert first.statement == "Compute $n$.\n\nThen check." and first.cell == 2
    assert first.solution_cells == (4, 5) and first.solution_options == {"class": "dropdown"}
    assert not first.pen_and_paper and first.solution_markdown == ""
    assert second.pen_and_paper and second.solution_cells == ()
    assert second.solution_markdown == "The proof: $1 + 1 = 2$."


def test_a_solution_with_markdown_then_code():
    cells = [md(exercise("ex-7-4")), md(START.format("ex-7-4") + "\nIn words.\n"), code("assert True\n"),
             md(END)]
    (only,) = read_exercises(cells)
    assert only.solution_cells == (2,) and only.solution_markdown == "In words."


@pytest.mark.parametrize("cells, message", [
    ([md("```{admonition} Exercise 1.1: old\n:class: tip\nText.\n```\n")], "old {admonition} markup"),
    ([md("```{exercise} no label\nText.\n```\n")], "needs ':label: ex-N-M'"),
    ([md(exercise("exercise-1")), md(START.format("exercise-1") + END)], "needs ':label: ex-N-M'"),
    ([md(exercise("ex-1-1")), md(exercise("ex-1-1"))], "used twice"),
    ([md(exercise("ex-1-1")), code("x = 1\n")], "ex-1-1 has no gated solution"),
    ([md(START.format("ex-1-1") + END), md(exercise("ex-1-1"))], "names no earlier exercise"),
    ([md(exercise("ex-1-1")), md(START.format("ex-1-1")), code("x = 1\n")], "has no {solution-end}"),
    ([md(exercise("ex-1-1")), md(END)], "without a {solution-start}"),
    ([md(exercise("ex-1-1")), md(START.format("ex-1-1")), md(exercise("ex-1-2"))], "inside the solution"),
    ([md(exercise("ex-1-1")), md(START.format("ex-1-1") + END), md(START.format("ex-1-1") + END)],
     "a second solution"),
])
def test_markup_the_site_or_the_student_notebooks_would_get_wrong_is_refused(cells, message):
    with pytest.raises(ExerciseMarkupError, match=message.replace("{", r"\{").replace("}", r"\}")):
        read_exercises(cells)
