"""The chapters' exercise markup (sphinx-exercise), read from a notebook's cells.

An exercise is a Markdown cell (it may start with other text, a ``## Exercises`` heading say) that
ends in the ``{exercise}`` directive of sphinx-exercise, labelled ``ex-N-M`` for Exercise N.M::

    ```{exercise} Output sizes with dilation
    :label: ex-4-5
    The statement, in Markdown.
    ```

Its solution follows it, gated: a ``{solution-start}`` directive naming the label, with
``:class: dropdown`` (the site keeps the solution closed until the reader opens it), then the
solution's code cells and/or Markdown, then ``{solution-end}``. The two directives sit in Markdown
cells of their own around solution code cells; a solution in Markdown only carries them in its own
cell::

    ```{solution-start} ex-4-5
    :class: dropdown
    ```
    (code cells of the solution, or the worked solution in Markdown)
    ```{solution-end}
    ```

The site numbers each exercise through numfig (the chapters are numbered in ``_toc.yml``), so the
label's N.M is the number a reader sees; prose links to an exercise with ``{ref}`ex-4-5```.
:func:`read_exercises` returns a notebook's exercises with their solutions, and refuses markup the
site or the student notebooks would get wrong (:class:`ExerciseMarkupError`, naming the cell).
An exercise is *pen and paper* when its title or statement says "pen and paper".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import _checks

LABEL = re.compile(r"ex-(\d+)-(\d+)")
_FENCE = r"(?P<fence>`{3,}|:{3,})"
_OPTIONS = r"(?P<options>(?:[ \t]*:[\w-]+:[^\n]*\n)*)"
_DIRECTIVE = re.compile(
    rf"^{_FENCE}\{{(?P<name>exercise|solution-start|solution-end)\}}[ \t]*(?P<argument>[^\n]*)\n"
    rf"{_OPTIONS}(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
_OLD_MARKUP = re.compile(r"^(`{3,}|:{3,})\{admonition\}\s*Exercise\b", re.M)
_PEN_AND_PAPER = re.compile(r"pen[ -]and[ -]paper", re.I)


class ExerciseMarkupError(_checks.UsageError):
    """A chapter's exercise markup that the site or the student notebooks would get wrong (a
    ``ValueError``; command lines report it in one line)."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a chapter and its gated solution."""

    chapter: int                 # N of Exercise N.M
    number: int                  # M
    title: str                   # the directive's argument
    statement: str               # the directive's body (Markdown)
    cell: int                    # index of the Markdown cell holding the {exercise} directive
    options: dict                # the directive's options, ``label`` included
    solution_cells: tuple[int, ...] = ()   # code cells between solution-start and solution-end
    solution_markdown: str = ""  # Markdown inside the gated solution
    solution_options: dict | None = None   # the solution-start directive's options; None: no solution

    @property
    def label(self) -> str:
        return f"ex-{self.chapter}-{self.number}"

    @property
    def name(self) -> str:
        """``Exercise 4.5``, as the site numbers it and the prose names it."""
        return f"Exercise {self.chapter}.{self.number}"

    @property
    def heading(self) -> str:
        """``Exercise 4.5: Output sizes with dilation`` (the student notebook's heading)."""
        return f"{self.name}: {self.title}" if self.title else self.name

    @property
    def pen_and_paper(self) -> bool:
        return bool(_PEN_AND_PAPER.search(f"{self.title}\n{self.statement}"))


def _options(text: str) -> dict:
    out = {}
    for line in text.splitlines():
        key, _, value = line.strip()[1:].partition(":")
        out[key] = value.strip()
    return out


def _source(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def read_exercises(cells) -> list[Exercise]:
    """The exercises of a notebook's cells, in order, each with its gated solution.

    Parameters
    ----------
    cells : list of dict
        The notebook's cells (``nb["cells"]`` of its JSON).

    Returns
    -------
    list of Exercise

    Raises
    ------
    ExerciseMarkupError
        For the old ``{admonition} Exercise`` markup, an exercise without a ``:label: ex-N-M``, a
        label used twice, a solution that names no earlier exercise, a ``{solution-start}``
        without ``{solution-end}`` (or the reverse), and an exercise without a solution.
    """
    found: dict[str, dict] = {}
    order: list[str] = []
    open_: dict | None = None          # the solution being read: its label, options, cells, text

    def fail(i, message):
        raise ExerciseMarkupError(f"cell {i}: {message}")

    for i, cell in enumerate(cells):
        text = _source(cell)
        if cell["cell_type"] == "code":
            if open_ is not None:
                open_["cells"].append(i)
            continue
        if cell["cell_type"] != "markdown":
            continue
        if _OLD_MARKUP.search(text):
            fail(i, "an exercise in the old {admonition} markup: write it as an {exercise} directive "
                    "with :label: ex-N-M and a gated solution (see nnimaging.exercises)")
        at = 0
        for match in _DIRECTIVE.finditer(text):
            if open_ is not None:
                open_["text"].append(text[at:match.start()])
            at = match.end()
            name, argument = match["name"], match["argument"].strip()
            options = _options(match["options"])
            if name == "exercise":
                if open_ is not None:
                    fail(i, f"{{exercise}} inside the solution of {open_['label']}: close it with "
                            f"{{solution-end}} first")
                label = options.get("label", "")
                if not LABEL.fullmatch(label):
                    fail(i, f"an {{exercise}} needs ':label: ex-N-M' (Exercise N.M), got "
                            f"{label or 'no label'!r}")
                if label in found:
                    fail(i, f"label {label} is used twice")
                found[label] = {"cell": i, "title": argument, "statement": match["body"].strip(),
                                "options": options, "solution": None}
                order.append(label)
            elif name == "solution-start":
                if open_ is not None:
                    fail(i, f"{{solution-start}} {argument} inside the solution of {open_['label']}")
                if argument not in found:
                    fail(i, f"{{solution-start}} {argument or '(no label)'} names no earlier exercise")
                if found[argument]["solution"] is not None:
                    fail(i, f"a second solution of {argument}")
                if match["body"].strip():
                    fail(i, f"{{solution-start}} {argument} has content: put the solution after its "
                            f"closing fence, before {{solution-end}}")
                open_ = {"label": argument, "options": options, "cells": [], "text": []}
            else:
                if open_ is None:
                    fail(i, "{solution-end} without a {solution-start} before it")
                found[open_["label"]]["solution"] = open_
                open_ = None
        if open_ is not None:
            open_["text"].append(text[at:])
    if open_ is not None:
        raise ExerciseMarkupError(f"the solution of {open_['label']} has no {{solution-end}}")
    exercises = []
    for label in order:
        entry = found[label]
        if entry["solution"] is None:
            raise ExerciseMarkupError(f"cell {entry['cell']}: {label} has no gated solution "
                                      "({solution-start} ... {solution-end}) after it")
        chapter, number = (int(g) for g in LABEL.fullmatch(label).groups())
        solution = entry["solution"]
        exercises.append(Exercise(chapter, number, entry["title"], entry["statement"], entry["cell"],
                                  entry["options"], tuple(solution["cells"]),
                                  "\n".join(t.strip() for t in solution["text"] if t.strip()),
                                  solution["options"]))
    return exercises
