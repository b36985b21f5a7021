"""The prose states its numbers; it does not point at the outputs (stored notebooks only, fast).

A sentence such as "the accuracy printed above" makes the reader hunt for a number the text could
state. The chapters state it with myst-nb's glue instead: a code cell calls
``nnimaging.notebook.glue("name", value)`` and the markdown writes ``{glue:text}`name:.2f```, so the
number in the sentence is the one the code computed. These tests keep the two in step:

* no markdown cell defers to the output ("printed above", "the printed ...", "(printed ...)");
* every glue role in a chapter's prose names a value that the stored outputs glue (a role that
  names nothing renders as a build warning and an empty gap), and its format spec applies to the
  value;
* every glued value is stated somewhere in the prose (no dead glue), and no name is glued twice.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOC = (ROOT / "_toc.yml").read_text(encoding="utf-8")
CHAPTERS = [ROOT / f"{name}.ipynb" for name in re.findall(r"file:\s*(chapters/\S+)", TOC)]

DEFERRING = re.compile(
    r"printed (?:above|below|last|here|there)|\bthe printed\b|\(printed\b|\bas printed\b",
    re.IGNORECASE,
)
"""Phrases that send the reader to an output instead of stating what it says."""

ROLE = re.compile(r"\{glue(?::(?P<kind>\w+))?\}`(?P<content>[^`]+)`")
"""A glue role: ``{glue}`name```, ``{glue:text}`name:.2f```, ``{glue:any}`name```, ..."""

GLUE_META = "scrapbook"


@functools.lru_cache(maxsize=None)
def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def prose(nb: dict) -> list[tuple[int, str]]:
    """(index, text) of every markdown cell, whitespace collapsed so phrases match across lines."""
    return [(i, re.sub(r"\s+", " ", "".join(c["source"])))
            for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"]


def glued(nb: dict) -> list[tuple[str, str, int]]:
    """(name, stored text/plain, cell index) of every value the stored outputs glue."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get(GLUE_META)
            if out.get("output_type") != "display_data" or not meta:
                continue
            prefix = meta.get("mime_prefix", "")
            text = "".join(out["data"].get(prefix + "text/plain", ""))
            found.append((meta["name"], text, i))
    return found


def roles(nb: dict) -> list[tuple[int, str, str | None, str, str | None]]:
    """(cell index, role kind, document or None, key, format spec or None) of every glue role."""
    found = []
    for i, text in prose(nb):
        for m in ROLE.finditer(text):
            kind, content = m["kind"] or "any", m["content"].strip()
            spec = None
            if kind == "text" and ":" in content.replace("::", ""):
                content, spec = content.rsplit(":", 1)   # as myst-nb splits it
            doc, _, key = content.rpartition("::")
            found.append((i, kind, doc or None, key, spec))
    return found


def format_like_myst(text: str, spec: str) -> str:
    """What ``{glue:text}`key:spec``` renders (myst_nb.core.variables.format_plain_text)."""
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    kind = spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, spec)


def document(path: Path, doc: str) -> Path:
    """The notebook that ``{glue:text}`doc::key``` reads from, relative to the chapter's folder."""
    return (path.parent / doc).with_suffix(".ipynb").resolve()


def test_the_table_of_contents_lists_chapters():
    assert CHAPTERS and all(p.exists() for p in CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_prose_states_numbers_instead_of_pointing_at_outputs(path):
    offenders = [f"cell {i}: ...{text[max(m.start() - 60, 0):m.end() + 40]}..."
                 for i, text in prose(load(path)) for m in DEFERRING.finditer(text)]
    assert not offenders, ("state the value with glue (nnimaging.notebook.glue and "
                           "{glue:text}`name:spec`) instead of pointing at the output:\n"
                           + "\n".join(offenders))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_glue_role_names_a_value_the_chapter_glues(path):
    nb = load(path)
    values = {name: text for name, text, _ in glued(nb)}
    problems = []
    for i, kind, doc, key, spec in roles(nb):
        source = values
        if doc is not None:
            other = document(path, doc)
            if not other.exists():
                problems.append(f"cell {i}: {doc}::{key} reads from a missing document {other.name}")
                continue
            source = {name: text for name, text, _ in glued(load(other))}
        if key not in source:
            problems.append(f"cell {i}: {{glue:{kind}}}`{key}` names no glued value"
                            + (f" of {doc}" if doc else "") + " in the stored outputs")
            continue
        if spec is not None:
            try:
                format_like_myst(source[key], spec)
            except (TypeError, ValueError) as err:
                problems.append(f"cell {i}: {key} = {source[key]} cannot be formatted as :{spec} ({err})")
    assert not problems, "\n".join(problems)


@functools.lru_cache(maxsize=None)
def used_names() -> dict[Path, set[str]]:
    """For each chapter, the glued names that some chapter's prose states (cross-document roles too)."""
    used: dict[Path, set[str]] = {p.resolve(): set() for p in CHAPTERS}
    for path in CHAPTERS:
        for _, _, doc, key, _ in roles(load(path)):
            target = document(path, doc) if doc else path.resolve()
            used.setdefault(target, set()).add(key)
    return used


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_glued_value_is_stated_in_the_prose(path):
    names = [name for name, _, _ in glued(load(path))]
    stated = used_names()[path.resolve()]
    dead = [f"{name} (cell {i})" for name, _, i in glued(load(path)) if name not in stated]
    assert not dead, f"glued but never stated in the prose (remove the glue or state it): {dead}"
    twice = sorted({n for n in names if names.count(n) > 1})
    assert not twice, f"glued more than once (the prose would show only one of them): {twice}"
