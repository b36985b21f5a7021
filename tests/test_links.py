"""Every internal link of the built site leads somewhere: files exist, #fragments name real ids.

The checker reads the HTML that Sphinx wrote (no browser, no network). A relative ``href``, ``src``
or form ``action`` must resolve to a file inside ``_build/html`` (a folder counts when it holds an
``index.html``), and a ``#fragment`` must be the ``id`` (or ``<a name>``) of an element in the
target page. Links to other hosts are listed, never fetched: the test suite runs offline. The list
is written to ``_build/external-links.txt`` for a maintainer who wants to check them online.

Root-absolute links (``/chapters/...``) are errors too: GitHub Pages serves a project's book under
``/<repository>/``, where such a link would leave the book.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Attributes that make the browser fetch or navigate to a URL (SVG <use>/<image> included).
LINK_ATTRIBUTES = {"href", "src", "action", "xlink:href", "poster"}
# Folders of the site that hold assets or page sources, not pages whose links we follow.
NOT_PAGES = ("_static", "_sources", "_images")
REFRESH = re.compile(r"^\s*\d+\s*;\s*url\s*=\s*(.+?)\s*$", re.IGNORECASE)


class _PageParser(HTMLParser):
    """Collects the ids of one page and the URLs it points at (with their tag, for messages)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.ids.add(attrs["name"])
        for name, value in attrs.items():
            if name in LINK_ATTRIBUTES and value is not None:
                self.links.append((f"<{tag} {name}>", value.strip()))
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = REFRESH.match(attrs.get("content") or "")
            if match:
                self.links.append(("<meta refresh>", match.group(1).strip("'\"")))

    handle_startendtag = handle_starttag


def parse_page(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


@dataclass
class LinkReport:
    pages: int = 0
    internal: int = 0  # internal links checked (files and fragments)
    fragments: int = 0  # of which carry a #fragment that was checked against ids
    broken: list[str] = field(default_factory=list)
    external: dict[str, set[str]] = field(default_factory=dict)  # URL -> pages linking to it


def check_site(root: Path) -> LinkReport:
    """Check every internal link of every HTML page under ``root``.

    Parameters
    ----------
    root : Path
        The site's top folder (``_build/html``).

    Returns
    -------
    LinkReport
        ``broken`` holds one message per broken link (``page: <tag attr> 'url': why``);
        ``external`` maps every link to another host to the pages that use it.
    """
    root = Path(root).resolve()
    html = sorted(p for p in root.rglob("*.html")
                  if not any(part in NOT_PAGES for part in p.relative_to(root).parts))
    parsed = {p: parse_page(p) for p in html}
    report = LinkReport(pages=len(html))

    def ids_of(target: Path) -> set[str]:
        if target not in parsed:
            parsed[target] = parse_page(target)
        return parsed[target].ids

    for page in html:
        where = page.relative_to(root).as_posix()
        for tag, url in parsed[page].links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith("//"):
                if parts.scheme in ("http", "https", "mailto", "ftp"):
                    report.external.setdefault(url, set()).add(where)
                elif parts.scheme not in ("data", "javascript", "blob", "tel"):
                    report.broken.append(f"{where}: {tag} {url!r}: unknown scheme {parts.scheme!r}")
                continue
            if url.startswith("/"):
                report.broken.append(f"{where}: {tag} {url!r}: root-absolute, leaves the book "
                                     "when it is served under /<repository>/ (use a relative link)")
                continue
            report.internal += 1
            path = unquote(parts.path)
            target = page if not path else (page.parent / path).resolve()
            if path and not target.is_relative_to(root):
                report.broken.append(f"{where}: {tag} {url!r}: points outside the site")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                report.broken.append(f"{where}: {tag} {url!r}: no file "
                                     f"{target.relative_to(root).as_posix()}")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                report.fragments += 1
                if fragment not in ids_of(target):
                    report.broken.append(f"{where}: {tag} {url!r}: no id {fragment!r} in "
                                         f"{target.relative_to(root).as_posix()}")
    return report


# ------------------------------------------------------------------ the checker, on tiny sites
def write_site(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


GOOD = {
    "index.html": '<meta http-equiv="Refresh" content="0; url=intro.html" />',
    "intro.html": """<a href="#top" id="top">top</a> <a href="#">also the top</a>
        <a href="chapters/one.html#sec-a%20b">section</a> <a href="chapters/">folder index</a>
        <link href="_static/style.css?digest=abc"> <img src="_images/fig%201.png">
        <a href="https://example.org/x">outside</a> <a href="mailto:a@b.c">mail</a>
        <img src="data:image/png;base64,AAAA"> <form action="search.html"></form>""",
    "search.html": "<p>search</p>",
    "chapters/one.html": """<h2 id="sec-a b">A</h2><a name="old-anchor"></a>
        <a href="../intro.html#top">back</a> <a href="index.html">here</a>
        <svg><use xlink:href="#glyph"/><path id="glyph"/></svg> <a href="#old-anchor">old</a>""",
    "chapters/index.html": "<p>index</p>",
    "_static/style.css": "body {}",
    "_images/fig 1.png": "not really a png",
}


def test_checker_passes_a_site_whose_links_all_resolve(tmp_path):
    report = check_site(write_site(tmp_path, GOOD))
    assert report.broken == []
    assert report.pages == 5  # _static and _images hold no pages
    assert report.internal == 12 and report.fragments == 5
    assert set(report.external) == {"https://example.org/x", "mailto:a@b.c"}


def test_checker_reports_each_kind_of_broken_link(tmp_path):
    broken = dict(GOOD)
    broken["intro.html"] = GOOD["intro.html"] + """
        <a href="chapters/two.html">missing page</a> <a href="chapters/one.html#nowhere">bad id</a>
        <a href="#missing-here">bad local id</a> <img src="_images/gone.png">
        <a href="/chapters/one.html">root-absolute</a> <a href="../../etc/passwd">outside</a>
        <a href="_static/">folder without index</a> <a href="file:///tmp/x">local file</a>"""
    broken["index.html"] = '<meta http-equiv="refresh" content="0; URL=\'start.html\'">'
    report = check_site(write_site(tmp_path, broken))
    reasons = "\n".join(report.broken)
    assert len(report.broken) == 9, reasons
    for expected in ["no file chapters/two.html", "no id 'nowhere' in chapters/one.html",
                     "no id 'missing-here' in intro.html", "no file _images/gone.png",
                     "root-absolute", "points outside the site", "no file _static/index.html",
                     "unknown scheme 'file'", "index.html: <meta refresh> 'start.html'"]:
        assert expected in reasons, f"{expected!r} not reported:\n{reasons}"


def test_checker_sees_a_fragment_removed_from_its_target(tmp_path):
    site = write_site(tmp_path, GOOD)
    assert check_site(site).broken == []
    (site / "chapters/one.html").write_text("<h2>A, without its id</h2>", encoding="utf-8")
    assert check_site(site).broken == ["intro.html: <a href> 'chapters/one.html#sec-a%20b': "
                                       "no id 'sec-a b' in chapters/one.html"]


# ------------------------------------------------------------------ the built book
def test_every_internal_link_of_the_book_resolves(site):
    report = check_site(site)
    assert report.pages >= 6  # intro, the redirect, chapters, authoring, bibliography, indices
    assert report.internal > 10 * report.pages and report.fragments > 0  # it did look
    assert not report.broken, f"{len(report.broken)} broken links:\n" + "\n".join(report.broken)


def test_external_links_are_listed_not_fetched(site):
    report = check_site(site)
    listing = site.parent / "external-links.txt"
    listing.write_text("".join(f"{url}\t{' '.join(sorted(pages))}\n"
                               for url, pages in sorted(report.external.items())), encoding="utf-8")
    assert report.external, "the book links to its repository, Binder and Colab"
    for url in report.external:
        parts = urlsplit(url)
        assert parts.scheme == "mailto" or (parts.scheme == "https" and parts.hostname), \
            f"external link {url!r} is not an https URL with a host (pages: {report.external[url]})"
