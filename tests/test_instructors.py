"""The instructors' page (``authoring/instructors.md``) points at chapters, sections and exercises
that exist (fast: reads files only, builds nothing).

The page maps lecture topics to sections of the chapters with links such as
``[Pooling](../chapters/04_convolutional_blocks.ipynb#pooling)``. Sphinx resolves the ``#pooling``
part through MyST's heading anchors (``myst_heading_anchors`` in ``_config.yml``): every heading
down to that depth gets a slug, computed from its text by MyST's default slug function, made
unique within the page. A slug that no heading has fails the ``-W`` build, and a renamed heading
silently breaks it, so the slugs are recomputed here from the chapters' markdown cells, the way
MyST does (and, where myst-parser is installed, checked against MyST's own function):

* the heading's text is the text of its inline content, inline code included, inline math left
  out (``## Backpropagation by hand: $y = \\log(x)^2$`` has the text ``Backpropagation by hand: ``);
* the slug is that text in lower case, spaces replaced by ``-``, and every character other than a
  word character (``\\w``), a CJK ideograph, ``-`` or a space removed;
* a slug already taken in the same page gets ``-1`` appended (then ``-2`` to that, and so on).

Also checked: every page the page links to is in ``_toc.yml``; the schedule names every chapter of
``_toc.yml`` and sets every exercise of the book; every "Exercise N.M" it mentions exists in
chapter N; each row of the topic tables names a section or says that the topic is not yet covered.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from nnimaging.exercises import read_exercises

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "authoring" / "instructors.md"
TEXT = PAGE.read_text(encoding="utf-8")
TOC = (ROOT / "_toc.yml").read_text(encoding="utf-8")
TOC_FILES = re.findall(r"(?:root|file):\s*(\S+)", TOC)
CHAPTERS = [ROOT / f"{name}.ipynb" for name in TOC_FILES if name.startswith("chapters/")]

LINK = re.compile(r"(?<!!)\[((?:[^\]\\]|\\.)*)\]\(([^)\s]+)\)")
ROLE = re.compile(r"\{(doc|ref)\}`([^`]*)`")
EXERCISE_MENTION = re.compile(r"\bExercises?\s+(\d+)\.(\d+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}|:{3,})")
SLUG_CLEAN = re.compile(r"[^\w\u4e00-\u9fff\- ]")  # MyST's _SLUGIFY_CLEAN_REGEX


def heading_anchor_depth() -> int:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    return int((config.get("sphinx", {}).get("config", {}) or {}).get("myst_heading_anchors", 0))


def markdown_blocks(path: Path) -> list[str]:
    """The markdown of a page: one block for a ``.md`` file, one per markdown cell of a notebook."""
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    return [path.read_text(encoding="utf-8")]


def heading_text(markdown: str) -> str:
    """The text MyST slugifies: inline text and code, without math, emphasis markers or link targets."""
    text = re.sub(r"\$\$.*?\$\$|\$[^$]+\$", "", markdown)             # dollarmath: not text
    text = re.sub(r"`+([^`]*)`+", r"\1", text)                          # code_inline: its content
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)              # link: its text
    text = re.sub(r"\*+([^*]+)\*+", r"\1", text)                        # emphasis markers
    return text


def slugify(title: str) -> str:
    """MyST's default_slugify."""
    return SLUG_CLEAN.sub("", title.lower().replace(" ", "-"))


def headings(path: Path) -> list[tuple[int, str]]:
    """(level, markdown text) of every ATX heading of a page, in order, outside fenced blocks."""
    found = []
    for block in markdown_blocks(path):
        fence = None
        for line in block.splitlines():
            opened = FENCE.match(line)
            if fence:
                if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                    fence = None
                continue
            if opened:
                fence = opened.group(1)
                continue
            match = HEADING.match(line)
            if match:
                found.append((len(match.group(1)), match.group(2) or ""))
    return found


def slugs(path: Path, depth: int) -> dict[str, tuple[int, str]]:
    """{slug: (level, heading)} for the headings MyST anchors, unique within the page as MyST makes them."""
    taken: dict[str, tuple[int, str]] = {}
    for level, text in headings(path):
        if level > depth:
            continue
        slug = slugify(heading_text(text))
        i = 1
        while slug in taken:
            slug = f"{slug}-{i}"
            i += 1
        taken[slug] = (level, text)
    return taken


def section(title: str) -> str:
    """The text of the page's ``## title`` section, up to the next ``##`` heading."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match, f"authoring/instructors.md has no section '## {title}'"
    return match.group(1)


def exercises_of(path: Path) -> set[str]:
    """``{"4.1", ...}``: the chapter's exercises, read from their markup (``nnimaging.exercises``)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return {f"{e.chapter}.{e.number}" for e in read_exercises(cells)}


def docname(path: Path) -> str:
    return path.relative_to(ROOT).with_suffix("").as_posix()


# ----------------------------------------------------------------------------------------- tests


def test_page_is_the_first_of_its_part_of_the_table_of_contents():
    toc = yaml.safe_load(TOC)
    part = next(p for p in toc["parts"] if p["caption"] == "For instructors and authors")
    assert part["chapters"][0]["file"] == "authoring/instructors"


def test_every_link_leads_to_a_page_of_the_book_and_every_anchor_to_a_heading():
    depth = heading_anchor_depth()
    links = [(text, target) for text, target in LINK.findall(TEXT) if not re.match(r"[a-z]+:", target)]
    assert len(links) > 100, "expected the page's links to chapter sections"
    problems = []
    cache: dict[Path, dict] = {}
    for text, target in links:
        path_part, _, fragment = target.partition("#")
        path = (PAGE.parent / unquote(path_part)).resolve() if path_part else PAGE
        if not path.is_file():
            problems.append(f"[{text}]({target}): no file {path}")
            continue
        if path.suffix in (".md", ".ipynb") and docname(path) not in TOC_FILES:
            problems.append(f"[{text}]({target}): {docname(path)} is not in _toc.yml")
        if fragment:
            if path not in cache:
                cache[path] = slugs(path, depth)
            if fragment not in cache[path]:
                near = [s for s in cache[path] if s.startswith(fragment[:8])]
                problems.append(f"[{text}]({target}): no heading of {docname(path)} down to level {depth} "
                                f"has the slug {fragment!r} (similar: {near})")
    assert not problems, "\n".join(problems)


def test_roles_name_existing_documents_and_labels():
    labels = {label for path in CHAPTERS + [ROOT / f"{f}.md" for f in TOC_FILES if (ROOT / f"{f}.md").exists()]
              for block in markdown_blocks(path) for label in re.findall(r"^\(([\w.:-]+)\)=\s*$", block, re.M)}
    for role, target in ROLE.findall(TEXT):
        name = re.sub(r"^.*<(.*)>$", r"\1", target).strip()
        if role == "doc":
            resolved = (PAGE.parent / name).resolve() if not name.startswith("/") else ROOT / name[1:]
            assert docname(resolved.with_suffix(".md")) in TOC_FILES, f"{{doc}}`{target}`: no such page"
        else:
            assert name in labels, f"{{ref}}`{target}`: no label ({name})= in the book"


def test_anchor_depth_is_configured_for_the_deepest_linked_heading():
    depth = heading_anchor_depth()
    assert depth >= 1, "_config.yml must set sphinx.config.myst_heading_anchors for the page's section links"
    deepest = 0
    for _, target in LINK.findall(TEXT):
        path_part, _, fragment = target.partition("#")
        if fragment and path_part.endswith(".ipynb"):
            deepest = max(deepest, slugs((PAGE.parent / path_part).resolve(), 6)[fragment][0])
    assert deepest <= depth


def test_slugs_agree_with_myst_parser():
    """Our heading text and slug rules against myst-parser's own, on every heading of every chapter."""
    pytest.importorskip("myst_parser")
    from markdown_it.renderer import RendererHTML
    from markdown_it.tree import SyntaxTreeNode
    from myst_parser.config.main import MdParserConfig
    from myst_parser.mdit_to_docutils.base import compute_unique_slug
    from myst_parser.parsers.mdit import create_md_parser

    extensions = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["parse"]["myst_enable_extensions"]
    parser = create_md_parser(MdParserConfig(enable_extensions=set(extensions)), RendererHTML)
    for chapter in CHAPTERS:
        theirs: dict[str, int] = {}
        for block in markdown_blocks(chapter):
            for node in SyntaxTreeNode(parser.parse(block)).walk():
                if node.type == "heading":
                    theirs[compute_unique_slug(node, theirs)] = int(node.tag[1])
        ours = {slug: level for slug, (level, _) in slugs(chapter, 6).items()}
        assert ours == theirs, chapter.name


def test_schedule_names_every_chapter_and_sets_every_exercise():
    schedule = section("A suggested schedule")
    missing = [docname(c) for c in CHAPTERS if f"../{docname(c)}.ipynb" not in schedule]
    assert not missing, f"the schedule does not link these chapters of _toc.yml: {missing}"
    set_there = {f"{n}.{m}" for n, m in EXERCISE_MENTION.findall(schedule)}
    unset = [f"Exercise {e}" for c in CHAPTERS for e in sorted(exercises_of(c)) if e not in set_there]
    assert not unset, f"the schedule sets no week for {unset}"


def test_every_exercise_mentioned_exists_in_its_chapter():
    mentioned = {f"{n}.{m}" for n, m in EXERCISE_MENTION.findall(TEXT)}
    assert mentioned
    existing = {e for chapter in CHAPTERS for e in exercises_of(chapter)}
    for n, chapter in enumerate(CHAPTERS, start=1):
        assert all(e.startswith(f"{n}.") for e in exercises_of(chapter)), f"{chapter.name} numbers exercises of another chapter"
    assert not sorted(mentioned - existing), f"no such exercise: {sorted(mentioned - existing)}"


def test_each_topic_row_names_a_section_or_says_it_is_not_covered():
    rows = [line for line in section("Lecture topics and where the book teaches them").splitlines()
            if re.match(r"^\| \d+ \|", line)]
    assert len(rows) > 80
    bare = [row[:80] for row in rows
            if not re.search(r"\]\(\.\./chapters/[^)]+\.ipynb#[^)]+\)", row) and "not yet covered" not in row]
    assert not bare, f"rows that name no section and do not say 'not yet covered': {bare}"
