"""Student notebooks: each chapter's exercises with gaps, and the checks that grade them.

``python -m nnimaging students [--out students/] [--check]`` reads the chapters of ``_toc.yml`` and
writes ``students/NN_name.ipynb`` (no outputs) for each chapter with exercises:

1. the chapter's Colab install cell, its import and ``nnimaging.setup()`` cell, and the body cells
   the exercises need (found by the names they use: a cell is kept when it binds a name that a
   kept cell or an exercise reads, or changes an object that one reads; see :func:`setup_cells`);
2. for each exercise, its statement (the ``{admonition} Exercise`` block, as plain Markdown), then
   one code cell: the givens, a ``# TODO`` and ``raise NotImplementedError``, and the checks.

How a solution cell is split into solution and checks (:func:`split_cell`):

* A line ``# -- checks --`` in the cell: above it is the solution, below it the checks, verbatim.
* Otherwise the top-level statements are classified. A *check* is an ``assert``, a call of a
  function named ``assert...`` (``torch.testing.assert_close``, ``np.testing.assert_allclose``), or
  a ``for``/``with``/``if`` whose body holds only checks. *Helpers* are assignments after the first
  check (or just before it, when they read nothing the cell computed) whose names only checks and
  other helpers read; *reports* are ``print`` calls, after the first check, that read only what the
  checks read. Helpers, checks and reports, in their order, are the checks; everything else is the
  solution, except the leading *givens* (assignments of literals, ``w, s = 40.0, 0.3``), which stay
  in the student's cell. The names the checks read from the solution are the ``# TODO``.
* The split is *clean* when the solution can run before the checks (no check reads a name that a
  later solution statement binds, no solution statement reads a helper), every check is at top
  level, and the checks read at least one name of the solution. Otherwise the whole cell becomes the
  gap and only the top-level ``assert`` statements and ``assert...`` calls are kept as checks.

Pen-and-paper exercises (the statement says "pen and paper") become a statement and an empty answer
cell. Tasks of the problem sessions that the chapters show solved in their body, not as exercises,
are listed in :data:`TASKS` (chapter, title, statement, unique substrings of the body cells that
hold the reference solution, checks), or tagged ``student-task`` in the chapter (their statement is
the Markdown cell before them). A body cell that is ``nnimaging.show_source(obj)`` contributes the
source of ``obj`` as its reference solution.

``--check`` writes nothing and fails if a student notebook in ``--out`` differs from what the
chapters give (``tests/test_students.py`` runs it, and runs every reference solution against its
checks and every untouched gap, which must fail them).
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import inspect
import io
import json
import re
import sys
import textwrap
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from . import _checks

MARKER = "# -- checks --"
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
# Names: what a piece of code binds and what it reads from outside
# ---------------------------------------------------------------------------------------------

_BUILTINS = set(dir(builtins))


def _target_names(target) -> set[str]:
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _binds(stmt) -> set[str]:
    """Names a top-level statement binds in the notebook's namespace (not inside functions)."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        if isinstance(node, ast.NamedExpr):
            names.add(node.target.id)
        if isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(stmt)
    return names


def _reads(node) -> set[str]:
    """Names a statement or expression reads from the enclosing (notebook) scope."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        args = node.args
        params = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a}
        outer = set()
        for d in args.defaults + [d for d in args.kw_defaults if d is not None]:
            outer |= _reads(d)
        if isinstance(node, ast.Lambda):
            return outer | (_reads(node.body) - params)
        for dec in node.decorator_list:
            outer |= _reads(dec)
        local = set(params)
        for stmt in node.body:
            local |= _binds(stmt)
        inner = set()
        for stmt in node.body:
            inner |= _reads(stmt)
        return outer | (inner - local)
    if isinstance(node, ast.ClassDef):
        out = set()
        for part in node.bases + node.keywords + node.decorator_list + node.body:
            out |= _reads(part)
        return out
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
        bound, out = set(), set()
        for gen in node.generators:
            out |= _reads(gen.iter) - bound
            bound |= _target_names(gen.target)
            for cond in gen.ifs:
                out |= _reads(cond) - bound
        elts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
        for e in elts:
            out |= _reads(e) - bound
        return out
    if isinstance(node, ast.Name):
        return {node.id} if isinstance(node.ctx, ast.Load) else set()
    out = set()
    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
        out.add(node.target.id)              # x += 1 reads x
    for child in ast.iter_child_nodes(node):
        out |= _reads(child)
    return out


def _free(stmts, bound: set[str]) -> set[str]:
    free = set()
    for s in stmts:
        if isinstance(s, (ast.For, ast.AsyncFor)):
            free |= _reads(s.iter) - bound
            bound |= _target_names(s.target)
            free |= _free(s.body + s.orelse, bound)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                free |= _reads(item.context_expr) - bound
                if item.optional_vars is not None:
                    bound |= _target_names(item.optional_vars)
            free |= _free(s.body, bound)
        elif isinstance(s, (ast.If, ast.While)):
            free |= _reads(s.test) - bound
            free |= _free(s.body + s.orelse, bound)
        else:
            free |= _reads(s) - bound
            bound |= _binds(s)
    return free


def free_names(source: str) -> set[str]:
    """Names a cell reads that it has not bound itself before (builtins excluded)."""
    return _free(ast.parse(source).body, set()) - _BUILTINS


def bound_names(source: str) -> set[str]:
    out = set()
    for stmt in ast.parse(source).body:
        out |= _binds(stmt)
    return out


_MUTATING = re.compile(r"(_|^(load_state_dict|train|eval|step|zero_grad|backward|append|extend|"
                       r"update|register_forward_hook))$")
_NOT_CHANGING = ("print", "display", "show", "plot", "glue", "imshow")


def _root(node):
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def changed_names(source: str) -> set[str]:
    """Names of objects a cell may change without rebinding them.

    ``model.eval()``, ``layer.weight.copy_(...)``, ``x[0] = 1``, ``net.weight = ...``, ``x += 1``,
    and the first argument of a call whose result is not kept (``train(model, steps)``), unless
    the call only shows something (``print``, ``plot...``).
    """
    out = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if _MUTATING.search(node.func.attr) and _root(node.func.value):
                out.add(_root(node.func.value))
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, (ast.Attribute, ast.Subscript)) and _root(t):
                    out.add(_root(t))
                if isinstance(node, ast.AugAssign) and isinstance(t, ast.Name):
                    out.add(t.id)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func, args = node.value.func, node.value.args
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if args and isinstance(args[0], ast.Name) and not name.startswith(_NOT_CHANGING):
                out.add(args[0].id)          # train(model, ...): the first argument
    return out


# ---------------------------------------------------------------------------------------------
# Splitting a solution cell into solution and checks
# ---------------------------------------------------------------------------------------------

@dataclass
class Split:
    """A solution cell cut into what the student writes and what checks it."""

    givens: str                  # kept in the student's cell, above the gap
    solution: str                # replaced by the gap
    checks: str                  # kept, below the gap
    todo: tuple[str, ...]        # names the checks read from the solution
    clean: bool
    reason: str = ""             # why the split is not clean

    @property
    def reference(self) -> str:
        """The reference solution followed by the checks, as the test runs them."""
        return "\n".join(p for p in (self.givens, self.solution, self.checks) if p.strip())


def _is_check(stmt) -> bool:
    if isinstance(stmt, ast.Assert):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name.startswith("assert")
    if isinstance(stmt, (ast.For, ast.With, ast.If)):   # a loop of checks, with helpers inside
        body = stmt.body + getattr(stmt, "orelse", [])
        return (any(_is_check(s) for s in body)
                and all(_is_check(s) or isinstance(s, ast.Assign) for s in body))
    return False


def _has_nested_check(stmt) -> bool:
    return any(_is_check(s) for s in ast.walk(stmt) if isinstance(s, ast.stmt) and s is not stmt)


def _is_given(stmt) -> bool:
    if not isinstance(stmt, ast.Assign):
        return False
    if not all(isinstance(t, (ast.Name, ast.Tuple)) for t in stmt.targets):
        return False
    try:
        ast.literal_eval(stmt.value)
    except ValueError:
        return False
    return True


def _is_print(stmt) -> bool:
    return (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "print")


def strip_comments(source: str) -> str:
    """The code without its comments and blank lines (the checks should not explain the answer)."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type != tokenize.COMMENT]
    code = tokenize.untokenize(tokens)
    return "\n".join(line.rstrip() for line in code.splitlines() if line.strip())


def _segment(lines, stmts) -> str:
    parts = []
    for s in stmts:
        parts.append("\n".join(lines[s.lineno - 1:s.end_lineno]))
    return "\n".join(parts)


def split_cell(source: str) -> Split:
    """Split a solution cell into givens, solution and checks (the rule: see the module docstring)."""
    source = source.rstrip() + "\n"
    marker = re.search(rf"^[ \t]*{re.escape(MARKER)}[ \t]*$", source, re.M)
    if marker:
        solution, checks = source[:marker.start()].rstrip(), source[marker.end():].strip("\n")
        todo = sorted(free_names(checks) & bound_names(solution)) if solution.strip() else []
        return Split("", solution, checks, tuple(todo), True)
    body = ast.parse(source).body
    lines = source.splitlines()
    n_given = 0
    while n_given < len(body) and _is_given(body[n_given]):
        n_given += 1
    givens, rest = body[:n_given], body[n_given:]
    kind = ["check" if _is_check(s) else "solution" for s in rest]
    if "check" not in kind:
        return _whole(source, lines, body, givens,
                      "no check at the top level" + (" (asserts inside a loop)" if any(
                          _has_nested_check(s) for s in rest) else ""))
    first = kind.index("check")
    bind = [_binds(s) for s in rest]
    read = [_reads(s) for s in rest]
    # helpers and reports after the first check; just before it, helpers that read nothing computed
    cell_bound = set().union(*bind[:first]) if first else set()
    candidates = {i for i in range(first, len(rest))
                  if kind[i] == "solution" and (isinstance(rest[i], ast.Assign) or _is_print(rest[i]))}
    i = first - 1
    while i >= 1 and isinstance(rest[i], ast.Assign) and not (read[i] & cell_bound):
        candidates.add(i)
        i -= 1
    changed = True
    while changed:  # demote candidates whose names a solution statement reads
        changed = False
        role = ["check" if kind[j] == "check" else "helper" if j in candidates else "solution"
                for j in range(len(rest))]
        for j in sorted(candidates):
            users = [k for k in range(j + 1, len(rest)) if bind[j] & read[k]]
            if _is_print(rest[j]):
                solution_bound = set().union(*(bind[k] for k in range(len(rest)) if role[k] == "solution"))
                check_reads = set().union(*(read[k] for k in range(len(rest)) if role[k] != "solution"
                                            and not _is_print(rest[k])))
                bad = bool(read[j] & solution_bound - check_reads)
            else:
                bad = (not [k for k in users if not _is_print(rest[k])]   # only printed: a result
                       or any(role[k] == "solution" for k in users))
            if bad:
                candidates.discard(j)
                changed = True
    role = ["check" if kind[j] == "check" else "helper" if j in candidates else "solution"
            for j in range(len(rest))]
    sol = [rest[j] for j in range(len(rest)) if role[j] == "solution"]
    chk = [rest[j] for j in range(len(rest)) if role[j] != "solution"]
    sol_bound = set().union(*(bind[j] for j in range(len(rest)) if role[j] == "solution"))
    chk_bound = set().union(*(bind[j] for j in range(len(rest)) if role[j] != "solution"))
    chk_reads = set().union(*(read[j] for j in range(len(rest)) if role[j] != "solution"))
    problems = []
    for j in range(len(rest)):
        if role[j] == "solution" and read[j] & chk_bound:
            problems.append(f"the solution reads {sorted(read[j] & chk_bound)} from the checks")
        if role[j] == "solution" and any(role[k] != "solution" and bind[j] & read[k]
                                         for k in range(j)):
            problems.append(f"a check reads {sorted(bind[j])} before the solution rebinds it")
    if any(_has_nested_check(s) for s in sol):
        problems.append("asserts inside the solution's loops")
    todo = sorted(chk_reads & sol_bound)
    if not todo:
        problems.append("the checks read nothing the solution computes")
    if problems:
        return _whole(source, lines, body, givens, "; ".join(dict.fromkeys(problems)))
    return Split(_segment(lines, givens), _segment(lines, sol), strip_comments(_segment(lines, chk)),
                 tuple(todo), True)


def _whole(source, lines, body, givens, reason) -> Split:
    """The whole cell (after the givens) is the gap; only plain top-level checks are kept."""
    rest = body[len(givens):]
    checks = [s for s in rest if _is_check(s)]
    checks_code = strip_comments(_segment(lines, checks)) if checks else ""
    solution = "\n".join(lines[rest[0].lineno - 1:]) if rest else ""   # reference: the whole cell
    bound = set().union(*(_binds(s) for s in rest)) if rest else set()
    todo = sorted(free_names(checks_code) & bound) if checks else []
    return Split(_segment(lines, givens), solution, checks_code, tuple(todo), False, reason)


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


_ADMONITION = re.compile(r"```\{admonition\}\s*(Exercise[^\n]*)\n(?::[^\n]*\n)*(.*?)\n```", re.S)
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
    # exercises: an admonition, then the code cells that follow it
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        blocks = _ADMONITION.findall(_source(cell))
        if not blocks:
            continue
        title_, body = blocks[-1]
        statement = f"### {title_.strip()}\n\n{body.strip()}"
        code = []
        j = i + 1
        while j < len(cells) and cells[j]["cell_type"] == "code":
            code.append(j)
            j += 1
        used.update(code)
        source = "\n\n".join(_source(cells[k]).rstrip() for k in code)
        if re.search(r"pen[ -]and[ -]paper", title_ + body, re.I) or not source.strip():
            exercise_cells[i] = Item("pen-and-paper", i, title=title_.strip(), statement=statement,
                                     source=source)
        else:
            exercise_cells[i] = Item("exercise", i, title=title_.strip(), statement=statement,
                                     source=source, split=split_cell(source))
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
