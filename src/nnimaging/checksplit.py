"""Splitting an exercise's solution cell into the student's gap and the checks that grade it.

The student notebooks (:mod:`nnimaging.students`) replace each exercise's reference solution by a
gap and keep its checks. :func:`split_cell` decides which lines are which:

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

The name analysis it rests on (:func:`free_names`, :func:`bound_names`, :func:`changed_names`)
also finds the chapter cells a student notebook must keep as its setup.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import tokenize
from dataclasses import dataclass

MARKER = "# -- checks --"


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
    """Names a cell binds at its top level (assignments, imports, definitions, loop targets)."""
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
