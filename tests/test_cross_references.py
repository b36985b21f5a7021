"""Cross-references between chapters point at chapters that exist, in the right direction.

A chapter's prose refers to others by number ("chapter 4", "chapters 5 and 6") or by position ("the
next chapter", "a later chapter", "the previous chapter"). Both go stale when chapters are added,
reordered or rewritten: a "later chapter" in what became the last chapter, a topic promised to "the
next chapter" that moved elsewhere. The chapters' order is the one of ``_toc.yml``; chapter ``N`` is
the ``N``-th chapter listed there. Checked, in every markdown cell of every chapter:

* ``chapter N`` names an existing chapter other than the one it is written in (a chapter calls
  itself "this chapter"); "(chapter 6" right after a ``{cite}`` role is a chapter of the cited book
  and is not checked;
* "next", "later", "following" or "coming" chapters are not referred to from the last chapter, nor
  "previous", "earlier" or "preceding" ones from the first;
* the sentence holding such a reference names a topic of the chapters it points to: for "the next
  chapter" and "the previous chapter", a word of that chapter's title or section headings; for the
  vaguer "a later chapter", "earlier chapters", a word of the prose of some chapter on that side.
  Words are compared in lower case, without a plural "s" or an "-ing"/"-ed" ending, ignoring short
  and generic words ("network", "image", ...). This is a heuristic: it catches a promise whose topic
  went elsewhere, not every wrong one. Where it complains about a sentence that is right, name the
  chapter by its number.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def chapter_paths() -> list[Path]:
    """The chapters in the order of ``_toc.yml`` (the book's numbering)."""
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    return [ROOT / f"{name}.ipynb" for name in re.findall(r"file:\s*(chapters/\S+)", toc)]


def markdown_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


CHAPTERS = chapter_paths()
COUNT = len(CHAPTERS)
TEXT = {n: markdown_cells(p) for n, p in enumerate(CHAPTERS, start=1)}

NUMBERED = re.compile(r"\bchapters?\s+(\d+(?:\s*(?:,|and|or|to|–|-)\s*\d+)*)", re.I)
FORWARD = re.compile(r"\b(?:the\s+|a\s+)?(next|later|following|coming)\s+(chapters?)\b", re.I)
BACKWARD = re.compile(r"\b(?:the\s+|an\s+)?(previous|earlier|preceding)\s+(chapters?)\b", re.I)
CITED_BOOK = re.compile(r"\{cite[a-z:]*\}`[^`]*`\s*\(\s*(?:see\s+)?$")
GENERIC = {
    "chapter", "chapters", "network", "image", "layer", "model", "example", "book", "this", "that",
    "with", "from", "their", "there", "these", "those", "which", "what", "more", "most", "than",
    "into", "look", "subject", "work", "step", "same", "such", "also", "them", "they", "then",
    "each", "every", "here", "make", "made", "show", "use", "used", "uses", "using", "have", "does",
    "closely", "inside", "principle", "only", "much", "other", "some", "about", "below", "above",
    "next", "later", "earlier", "previous", "follow", "following", "preceding", "come", "coming",
}


def stem(word: str) -> str:
    word = word.lower()
    for ending in ("ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 4:
            return word[: -len(ending)]
    return word


def words(text: str) -> set[str]:
    """Topic words: lower case, stemmed, at least 4 letters, not generic."""
    found = {stem(w) for w in re.findall(r"[A-Za-z][A-Za-z-]{3,}", text)}
    return {w for w in found if w not in GENERIC and w.rstrip("s") not in GENERIC}


def headings(n: int) -> set[str]:
    """Topic words of chapter ``n``'s title and section headings."""
    lines = [line for cell in TEXT[n] for line in cell.splitlines() if line.startswith("#")]
    return words("\n".join(lines))


def prose(n: int) -> set[str]:
    return words("\n".join(TEXT[n]))


def sentence_around(text: str, start: int, end: int) -> str:
    """The sentence holding ``text[start:end]``: sentences end with '.', '?' or '!' and a space, at
    a blank line, and at the end of a heading line."""
    stops = r"[.?!]\s|\n\s*\n|^#[^\n]*\n"
    lefts = [m.end() for m in re.finditer(stops, text[:start], re.M)]
    left = lefts[-1] if lefts else 0
    right = re.compile(stops, re.M).search(text, end)
    return " ".join(text[left: right.start() + 1 if right else len(text)].split())


def numbers(group: str) -> list[int]:
    values = [int(v) for v in re.findall(r"\d+", group)]
    if re.search(r"\bto\b|–|-", group) and len(values) == 2:
        return list(range(values[0], values[1] + 1))
    return values


def references(n: int):
    """Yield ``(kind, target_or_direction, sentence)`` for each reference in chapter ``n``'s prose."""
    for cell in TEXT[n]:
        for m in NUMBERED.finditer(cell):
            if CITED_BOOK.search(cell[: m.start()]):
                continue
            for k in numbers(m.group(1)):
                yield "number", k, sentence_around(cell, m.start(), m.end())
        for pattern, direction in ((FORWARD, +1), (BACKWARD, -1)):
            for m in pattern.finditer(cell):
                plural = m.group(2).lower().endswith("s")
                adjacent = m.group(1).lower() in ("next", "previous") and not plural
                yield ("adjacent" if adjacent else "side"), direction, sentence_around(cell, m.start(), m.end())


def problems(n: int) -> list[str]:
    """Everything wrong with chapter ``n``'s references, one line each, quoting the sentence."""
    found = []
    for kind, target, sentence in references(n):
        where = f"chapter {n} ({CHAPTERS[n - 1].stem}): {sentence!r}"
        if kind == "number":
            if not 1 <= target <= COUNT:
                found.append(f"{where} names chapter {target}, but the book has {COUNT} chapters")
            elif target == n:
                found.append(f"{where} names its own number: say 'this chapter'")
            continue
        direction = target
        side = list(range(n + 1, COUNT + 1)) if direction > 0 else list(range(1, n))
        if not side:
            found.append(f"{where} points {'forward from the last' if direction > 0 else 'back from the first'} "
                         "chapter: no such chapter")
            continue
        topic = words(sentence)
        if kind == "adjacent":
            covered = topic & headings(n + direction)
            what = f"the title or headings of chapter {n + direction}"
        else:
            covered = topic & set().union(*(prose(k) for k in side))
            what = f"the prose of chapters {side[0]}..{side[-1]}"
        if not covered:
            found.append(f"{where} promises a topic ({sorted(topic)}) that {what} never names")
    return found


def test_the_chapters_are_found_in_order():
    assert COUNT >= 2
    assert all(p.is_file() for p in CHAPTERS), [p for p in CHAPTERS if not p.is_file()]
    numbers_in_names = [int(p.stem.split("_")[0]) for p in CHAPTERS]
    assert numbers_in_names == list(range(1, COUNT + 1)), "file names and _toc.yml disagree on the order"


@pytest.mark.parametrize("n", range(1, COUNT + 1), ids=[p.stem for p in CHAPTERS])
def test_cross_references_point_at_existing_chapters_in_the_right_direction(n):
    found = problems(n)
    assert not found, "stale cross-references:\n" + "\n".join(found)


# --------------------------------------------------------------------------- the checker itself
def _check(monkeypatch, chapters: dict[int, list[str]]) -> list[str]:
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "TEXT", chapters)
    monkeypatch.setattr(module, "COUNT", len(chapters))
    monkeypatch.setattr(module, "CHAPTERS", [Path(f"chapters/{k:02d}_x.ipynb") for k in sorted(chapters)])
    return [line for k in sorted(chapters) for line in problems(k)]


def test_the_checker_finds_stale_references(monkeypatch):
    book = {1: ["# Pixels\n\nThe next chapter trains the network by backpropagation."],
            2: ["# Backpropagation\n\nAs in chapter 1, and in chapters 1 and 3. The deep image prior "
                "is the subject of a later chapter. Chapter 2 is this one."]}
    found = _check(monkeypatch, book)
    assert len(found) == 3, found
    assert "'As in chapter 1, and in chapters 1 and 3.' names chapter 3, but the book has 2" in found[0]
    assert "'Chapter 2 is this one.' names its own number" in found[1]
    assert "subject of a later chapter.' points forward from the last chapter" in found[2]


def test_the_checker_needs_the_promised_topic_next_door(monkeypatch):
    book = {1: ["# Pixels\n\nThe next chapter is about the Wiener filter.",
                "A later chapter covers convolutions."],
            2: ["# Convolutions\n\n## Padding\n\nThe previous chapter counted pixels. "
                "See {cite}`goodfellow2016book` (chapter 9) for more."]}
    found = _check(monkeypatch, book)
    assert len(found) == 1 and "wiener" in found[0] and "headings of chapter 2" in found[0], found
