"""Student notebooks: each chapter's exercises with gaps, and the checks that grade them.

``python -m nnimaging students [--out students/] [--check]`` reads the chapters of ``_toc.yml`` and
writes ``students/NN_name.ipynb`` (no outputs) for each chapter with exercises:

1. the chapter's Colab install cell, its import and ``nnimaging.setup()`` cell, and the body cells
   the exercises need (found by the names they use: a cell is kept when it binds a name that a
   kept cell or an exercise reads, or changes an object that one reads; see :func:`setup_cells`);
2. for each exercise (an ``{exercise}`` directive and its gated solution, read by
   :mod:`nnimaging.exercises`), its statement as plain Markdown under the heading
   ``### Exercise N.M: title``, then one code cell: the givens, a ``# TODO`` and
   ``raise NotImplementedError``, and the checks. The code cells of the solution are the reference;
   :func:`nnimaging.checksplit.split_cell` cuts it into the gap and the checks (a line
   ``# -- checks --`` in the cell chooses the cut).

Pen-and-paper exercises (the title or statement says "pen and paper", or the solution has no code)
become a statement and an empty answer cell. Tasks of the problem sessions that the chapters show
solved in their body, not as exercises, are listed in :data:`TASKS` (chapter, title, statement,
unique substrings of the body cells that hold the reference solution, checks), or tagged
``student-task`` in the chapter (their statement is the Markdown cell before them). A body cell that
is ``nnimaging.show_source(obj)`` contributes the source of ``obj`` as its reference solution.

``--check`` writes nothing and fails if a student notebook in ``--out`` differs from what the
chapters give (``tests/test_students.py`` runs it, and runs every reference solution against its
checks and every untouched gap, which must fail them).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from . import _checks
from .checksplit import MARKER, Split, bound_names, changed_names, free_names, split_cell
from .exercises import ExerciseMarkupError, read_exercises

TASK_TAG = "student-task"
ROOT = Path(__file__).resolve().parents[2]

@dataclass(frozen=True)
class Task:
    """A problem-session task that a chapter shows solved in its body rather than as an exercise."""

    chapter: str                 # the chapter's file stem, "03_backpropagation"
    title: str
    statement: str               # Markdown
    cells: tuple[str, ...]       # a unique substring of each body cell holding the solution
    checks: str                  # check code, run after the solution


TASKS = (
    Task(
        chapter="03_backpropagation",
        title="Problem session: Linear and ReLU as autograd Functions",
        statement=(
            "Write `LinearFunction` ($h = g W^\\top + b$ for a batch of rows $g$, the convention of\n"
            "`nn.Linear`) and `ReLUFunction` as subclasses of `torch.autograd.Function` with a\n"
            "hand-written `backward`: it receives $\\partial L/\\partial h$ and returns one gradient per\n"
            "input of `forward`, each of that input's shape. Check both with `gradcheck` (float64) and\n"
            "the gradients of `LinearFunction` against `F.linear`'s. (The chapter's solution is\n"
            "`ad.LinearFunction` and `ad.ReLUFunction`; try without looking.)"),
        cells=("show_source(ad.LinearFunction)", "show_source(ad.ReLUFunction)"),
        checks=(
            "g = torch.randn(8, 5, dtype=torch.float64, requires_grad=True)\n"
            "W = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)\n"
            "b = torch.randn(3, dtype=torch.float64, requires_grad=True)\n"
            "assert gradcheck(LinearFunction.apply, (g, W, b))\n"
            "assert gradcheck(ReLUFunction.apply, (g,))\n"
            "h = LinearFunction.apply(g, W, b)\n"
            "upstream = torch.randn_like(h)\n"
            "ours = torch.autograd.grad(h, (g, W, b), upstream)\n"
            "torchs = torch.autograd.grad(F.linear(g, W, b), (g, W, b), upstream)\n"
            "for ours_grad, torch_grad in zip(ours, torchs):\n"
            "    torch.testing.assert_close(ours_grad, torch_grad)\n"
            "torch.testing.assert_close(ReLUFunction.apply(g), torch.relu(g))\n"
            'print("LinearFunction and ReLUFunction: gradcheck passed, equal to PyTorch\'s")\n'),
    ),
    Task(
        chapter="03_backpropagation",
        title="Problem session: training a network to inpaint digits",
        statement=(
            "Write `train(model, epochs=5, batch_size=64, lr=0.1, seed=0)`, the training loop of the\n"
            "inpainting network: for each epoch, shuffle `train_set` with a `torch.Generator` seeded\n"
            "with `seed`, and for each mini-batch (1) hide pixels with `mask_pixels`, (2) run the\n"
            "forward pass, (3) compute the loss $\\tfrac12\\lVert y - \\hat y\\rVert^2$ per image,\n"
            "averaged over the batch, and run the backward pass, (4) update every parameter with\n"
            "$\\theta \\leftarrow \\theta - \\eta\\,\\partial L/\\partial\\theta$ by hand (no optimizer).\n"
            "Return the list of the losses, one per step. The checks train the chapter's MLP, built\n"
            "from `ad.Linear` and `ad.ReLU`, for one epoch and compare the held-out PSNR before and\n"
            "after."),
        cells=("def train(model, epochs=5",),
        checks=(
            "torch.manual_seed(0)\n"
            "net = nn.Sequential(ad.Linear(784, 256), ad.ReLU(), ad.Linear(256, 784))\n"
            "losses = train(net, epochs=1)\n"
            "assert len(losses) == len(train_set) // 64 + (len(train_set) % 64 > 0)\n"
            "assert np.mean(losses[-20:]) < 0.5 * losses[0]\n"
            "masked = mask_pixels(heldout_set, torch.Generator().manual_seed(1))\n"
            "with torch.no_grad():\n"
            "    restored = net(masked).clamp(0, 1)\n"
            "assert psnr(restored, heldout_set) > psnr(masked, heldout_set) + 2\n"
            'print(f"after one epoch: loss {np.mean(losses[-20:]):.2f}, held-out PSNR "\n'
            '      f"{psnr(masked, heldout_set):.2f} dB -> {psnr(restored, heldout_set):.2f} dB")\n'),
    ),
)


# ---------------------------------------------------------------------------------------------
# Reading a chapter: exercises, tasks and the setup they need
# ---------------------------------------------------------------------------------------------

@dataclass
class Item:
    """One entry of a student notebook."""

    kind: str                    # "setup", "exercise", "pen-and-paper"
    cell: int                    # index of the chapter cell it comes from
    source: str = ""             # setup: the code
    title: str = ""
    statement: str = ""          # Markdown
    split: Split | None = None
    reference_module: str = ""   # module whose globals the reference solution needs (show_source)

    @property
    def label(self) -> str:
        """``Exercise 2.1`` for an exercise, the whole title for a task."""
        return self.title.split(":")[0].strip() if self.title.startswith("Exercise") else self.title

    @property
    def handling(self) -> str:
        if self.kind == "pen-and-paper":
            return "markdown only (pen and paper)"
        if self.split is None:
            return self.kind
        if self.split.clean:
            return "split cleanly"
        return f"whole-cell gap ({self.split.reason})"


@dataclass
class Chapter:
    stem: str
    title: str
    metadata: dict
    items: list[Item] = field(default_factory=list)

    @property
    def exercises(self) -> list[Item]:
        return [i for i in self.items if i.kind != "setup"]


_SHOW_SOURCE = re.compile(r"^\s*(?:nnimaging|nni)\.show_source\(([\w.]+)\)\s*$")


def chapter_paths(root: Path = ROOT) -> list[Path]:
    """The chapters named in ``_toc.yml``, in the book's order."""
    toc = (root / "_toc.yml").read_text(encoding="utf-8")
    files = re.findall(r"^\s*-\s*file:\s*(chapters/\S+)\s*$", toc, re.M)
    return [root / f"{f}.ipynb" for f in files]


def _source(cell) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _aliases(cells) -> dict[str, str]:
    out = {}
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(_source(cell))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _resolve(dotted: str, aliases: dict[str, str]):
    """The object named ``ad.LinearFunction`` in a chapter, and the module that defines it."""
    head, *rest = dotted.split(".")
    path = aliases.get(head, head)
    try:
        obj = importlib.import_module(path)
    except ImportError:
        module, _, attr = path.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
    for part in rest:
        obj = getattr(obj, part)
    return obj, inspect.getmodule(obj).__name__


def _task_solution(cells, aliases) -> tuple[str, str]:
    """Reference code of a task's body cells (``show_source(obj)`` gives obj's source)."""
    parts, module = [], ""
    for cell in cells:
        src = _source(cell).strip()
        shown = _SHOW_SOURCE.match(src)
        if shown:
            obj, module = _resolve(shown.group(1), aliases)
            parts.append(textwrap.dedent(inspect.getsource(obj)).rstrip())
        else:
            parts.append(src)
    return "\n\n\n".join(parts), module


def _find_cell(cells, needle: str, chapter: str) -> int:
    hits = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and needle in _source(c)]
    if len(hits) != 1:
        raise ValueError(f"students.TASKS: {needle!r} is in {len(hits)} code cells of {chapter}, "
                         f"expected exactly one")
    return hits[0]


def _markdown_title(statement: str) -> str:
    return statement.splitlines()[0].lstrip("# ").strip() if statement else ""


def read_chapter(path: Path, tasks=TASKS) -> Chapter:
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = nb["cells"]
    stem = Path(path).stem
    title = next((_source(c).splitlines()[0].lstrip("# ").strip() for c in cells
                  if c["cell_type"] == "markdown" and _source(c).startswith("# ")), stem)
    chapter = Chapter(stem, title, {"kernelspec": nb["metadata"].get("kernelspec", {}),
                                    "language_info": {"name": "python"}})
    aliases = _aliases(cells)
    exercise_cells: dict[int, Item] = {}
    used: set[int] = set()
    # exercises: the {exercise} directive, its solution's code cells between solution-start and -end
    try:
        exercises = read_exercises(cells)
    except ExerciseMarkupError as err:
        raise ExerciseMarkupError(f"{Path(path).name}, {err}") from None
    for exercise in exercises:
        code = list(exercise.solution_cells)
        used.update(code)
        source = "\n\n".join(_source(cells[k]).rstrip() for k in code)
        statement = f"### {exercise.heading}\n\n{exercise.statement}"
        if exercise.pen_and_paper or not source.strip():
            exercise_cells[exercise.cell] = Item("pen-and-paper", exercise.cell, title=exercise.heading,
                                                 statement=statement, source=source)
        else:
            exercise_cells[exercise.cell] = Item("exercise", exercise.cell, title=exercise.heading,
                                                 statement=statement, source=source,
                                                 split=split_cell(source))
    # tasks: listed in TASKS, or tagged in the chapter
    for task in tasks:
        if task.chapter != stem:
            continue
        idx = [_find_cell(cells, needle, stem) for needle in task.cells]
        solution, module = _task_solution([cells[k] for k in idx], aliases)
        source = f"{solution}\n\n{MARKER}\n{task.checks}"
        used.update(idx)
        exercise_cells[idx[0]] = Item("exercise", idx[0], title=task.title,
                                      statement=f"### {task.title}\n\n{task.statement.strip()}",
                                      source=source, split=split_cell(source), reference_module=module)
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "code" and TASK_TAG in cell.get("metadata", {}).get("tags", []) \
                and i not in used:
            before = next((_source(cells[k]) for k in range(i - 1, -1, -1)
                           if cells[k]["cell_type"] == "markdown"), "")
            used.add(i)
            exercise_cells[i] = Item("exercise", i, title=_markdown_title(before),
                                     statement=before.strip(), source=_source(cell),
                                     split=split_cell(_source(cell)))
    setup = setup_cells(cells, exercise_cells, used)
    chapter.items = sorted(list(exercise_cells.values()) + setup, key=lambda it: it.cell)
    return chapter


def setup_cells(cells, exercises: dict[int, Item], used: set[int]) -> list[Item]:
    """The body's code cells that the exercises need, found backwards from the last exercise.

    Always kept: the Colab install cell and the cell that calls ``nnimaging.setup()``. A body cell is
    kept when it binds a name that a later kept cell or an exercise reads, or changes (see
    :func:`changed_names`) an object one of them reads.
    """
    keep = []
    needed: set[str] = set()
    for i in range(len(cells) - 1, -1, -1):
        cell = cells[i]
        if i in exercises:
            item = exercises[i]
            if item.kind == "exercise":
                needed |= free_names(item.split.reference)
                needed -= bound_names(item.split.reference) - free_names(item.split.reference)
            continue
        if cell["cell_type"] != "code" or i in used:
            continue
        src = _source(cell)
        try:
            binds, changes, reads = bound_names(src), changed_names(src), free_names(src)
        except SyntaxError:
            continue
        always = "nnimaging.setup()" in src or "remove-cell" in cell.get("metadata", {}).get("tags", [])
        if always or binds & needed or changes & needed:
            keep.append(Item("setup", i, source=src.rstrip()))
            needed = (needed - (binds - reads)) | reads
    return keep


# ---------------------------------------------------------------------------------------------
# Writing the student notebook
# ---------------------------------------------------------------------------------------------

def _cell(kind: str, source: str, cell_id: str, tags=()) -> dict:
    cell = {"cell_type": kind, "id": cell_id, "metadata": {"tags": list(tags)} if tags else {},
            "source": source.splitlines(keepends=True)}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def gap_code(item: Item) -> str:
    split = item.split
    label = item.label
    needs = (f"; the checks below use: {', '.join(split.todo)}" if split.todo
             else "; nothing below checks it")
    lines = []
    if split.givens.strip():
        lines += [split.givens.rstrip(), ""]
    lines += [f"# TODO: {label}, your solution here{needs}.",
              f'raise NotImplementedError("{label}: replace this line with your solution")']
    if split.checks.strip():
        lines += ["", MARKER, split.checks.rstrip()]
    return "\n".join(lines)


def notebook(chapter: Chapter) -> dict:
    """The student notebook of a chapter, as JSON-ready data (no outputs)."""
    cells = [_cell("markdown", (
        f"# Exercises: {chapter.title}\n\n"
        f"The exercises of the chapter *{chapter.title}* (`chapters/{chapter.stem}.ipynb`), with gaps. "
        "Run the setup cells first. In each exercise, replace the `raise NotImplementedError` line "
        "with your code; the lines below `# -- checks --` then test it and must run without an "
        "error. Pen-and-paper exercises have a Markdown cell for your answer.\n\n"
        "Generated by `python -m nnimaging students` from the chapter: edit the chapter, not this "
        "file."), f"{chapter.stem}-title")]
    setup_done = False
    for n, item in enumerate(chapter.items):
        cid = f"{chapter.stem}-{n:02d}"
        if item.kind == "setup":
            if not setup_done:
                cells.append(_cell("markdown", "## Setup (from the chapter)", cid + "-h"))
                setup_done = True
            cells.append(_cell("code", item.source, cid))
            continue
        cells.append(_cell("markdown", item.statement, cid + "-s"))
        if item.kind == "pen-and-paper":
            cells.append(_cell("markdown", "*Your answer (pen and paper):*", cid + "-a"))
        else:
            cells.append(_cell("code", gap_code(item), cid))
    return {"cells": cells, "metadata": chapter.metadata, "nbformat": 4, "nbformat_minor": 5}


def dumps(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def build(root: Path = ROOT) -> dict[str, str]:
    """``{file name: notebook text}`` of every student notebook the chapters give."""
    out = {}
    for path in chapter_paths(root):
        chapter = read_chapter(path)
        if chapter.exercises:
            out[f"{chapter.stem}.ipynb"] = dumps(notebook(chapter))
    return out


def main(argv=None, root: Path | None = None) -> int:
    """The command line; ``root`` is the book's folder (default: the current one)."""
    root = Path(root) if root is not None else Path.cwd()
    if not (root / "_toc.yml").is_file():
        raise _checks.UsageError(f"no _toc.yml in {root}: run this in the book's folder")
    parser = argparse.ArgumentParser(prog="python -m nnimaging students",
                                     description="write the student notebooks of the chapters' exercises")
    parser.add_argument("--out", default="students", help="folder of the student notebooks")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; fail if the notebooks in --out are not up to date")
    args = parser.parse_args(argv)
    out = Path(args.out) if Path(args.out).is_absolute() else root / args.out
    wanted = build(root)
    if args.check:
        present = {p.name for p in out.glob("*.ipynb")} if out.is_dir() else set()
        stale = sorted(n for n, text in wanted.items()
                       if n not in present or (out / n).read_text(encoding="utf-8") != text)
        extra = sorted(present - set(wanted))
        if stale or extra:
            raise _checks.UsageError(
                f"student notebooks out of date in {args.out}/: "
                + ", ".join([f"{n} (differs or missing)" for n in stale] + [f"{n} (no such chapter)"
                                                                           for n in extra])
                + "; run: python -m nnimaging students")
        print(f"{len(wanted)} student notebooks in {args.out}/ are up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in wanted.items():
        target = out / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            _checks.atomic_write_text(target, text)
            print(f"wrote {target}")
    for stale in sorted(set(p.name for p in out.glob("*.ipynb")) - set(wanted)):
        print(f"note: {out / stale} matches no chapter with exercises", file=sys.stderr)
    return 0
