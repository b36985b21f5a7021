"""The book's configuration against what else lies in a working tree, and Binder against CI (fast: no build)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _exclude_patterns() -> list[str]:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["exclude_patterns"]


def _created_folders() -> set[str]:
    """Folders that the tests, the package and the scripts create in a checkout (never committed)."""
    from nnimaging import experiments, train

    ignored = {line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
               if line.strip().endswith("/") and not line.startswith("#")}
    return ignored | {
        ".pytest_cache",  # pytest's cache (the README's test command leaves .pytest_cache/README.md)
        experiments.RUNS_RESULTS.parts[0],  # experiments without --update-shipped
        Path(train._settings({"out": None})["out"]).parts[0],  # training runs
        "gpu-out",  # benchmarks/gpu_session.sh's folder in the README
    }


def test_book_excludes_every_folder_that_tests_and_package_create(tmp_path):
    # The README's test command followed by its build command failed: pytest left
    # .pytest_cache/README.md and `jupyter-book build -W` stopped on "document isn't included in any toctree".
    # Sphinx's own file discovery, on a tree holding a page in each of those folders:
    from sphinx.util.matching import get_matching_files

    planted = []
    for folder in sorted(_created_folders()):
        sample = folder.replace("*", "x")
        places = [sample] + ([f"src/nnimaging/{sample}"] if folder.startswith(("*", "__", ".ipynb")) else [])
        for place in places:
            for doc in ("README.md", "notes.ipynb", "deeper/page.md"):
                (tmp_path / place / doc).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / place / doc).write_text("# stray page\n")
                planted.append(f"{place}/{doc}")
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "01.ipynb").write_text("{}")
    found = set(get_matching_files(tmp_path, include_patterns=["**"], exclude_patterns=_exclude_patterns()))
    assert "chapters/01.ipynb" in found
    leaked = sorted(found & set(planted))
    assert not leaked, f"_config.yml's exclude_patterns miss {leaked}"


def test_book_still_builds_its_table_of_contents():
    from sphinx.util.matching import Matcher

    excluded = Matcher(_exclude_patterns())  # no page of the table of contents is excluded
    toc = (ROOT / "_toc.yml").read_text(encoding="utf-8")
    files = re.findall(r"(?:root|file):\s*(\S+)", toc)
    assert files and not [f for f in files if excluded(f + ".md") or excluded(f + ".ipynb")]


# ------------------------------------------------------------------------------ Binder


def _pins(path: Path, seen=None) -> tuple[dict[str, str], list[str]]:
    """``{name: version}`` of the ``name==version`` lines of a requirements file (following ``-r``),
    and its other lines (options, editable installs)."""
    seen = set() if seen is None else seen
    pins, other = {}, []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            included = (path.parent / line.split(maxsplit=1)[1]).resolve()
            assert included not in seen, f"{path} includes {included} twice"
            seen.add(included)
            more, rest = _pins(included, seen)
            pins.update(more)
            other += rest
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
        else:
            other.append(line)
    return pins, other


def _ci_python() -> str:
    workflow = (ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf-8")
    versions = set(re.findall(r"image:\s*python:(\d+\.\d+)", workflow))
    assert len(versions) == 1, f"expected one Python image in book.yml, got {versions}"
    return versions.pop()


def test_binder_pins_the_python_the_book_is_tested_on():
    # repo2docker's default Python has been older than what numpy==2.4.6 requires
    runtime = (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"python-\d+\.\d+", runtime), f"binder/runtime.txt must say python-X.Y, got {runtime!r}"
    assert runtime == f"python-{_ci_python()}", "Binder and CI must run the same Python"
    assert "Python " + runtime.split("-")[1] in (ROOT / "README.md").read_text(encoding="utf-8")


def test_binder_installs_the_same_pins_as_requirements_txt_on_that_python():
    binder_pins, binder_other = _pins(ROOT / "binder" / "requirements.txt")
    pins, other = _pins(ROOT / "requirements.txt")
    assert binder_pins == pins
    # what may differ: where the wheels come from (PyTorch's CPU index), nothing else
    extra = [line for line in binder_other if line not in other]
    assert all(line.startswith(("--extra-index-url ", "--index-url ", "--find-links ")) for line in extra), extra
    # every pinned version accepts that Python (Requires-Python of the installed distributions, which
    # are the pinned ones where the tests run)
    from importlib.metadata import PackageNotFoundError, metadata

    from packaging.specifiers import SpecifierSet

    python = (ROOT / "binder" / "runtime.txt").read_text(encoding="utf-8").strip().split("-")[1]
    refused = []
    for name, version in pins.items():
        try:
            meta = metadata(name)
        except PackageNotFoundError:
            continue
        if meta["Version"].split("+")[0] != version.split("+")[0]:
            continue  # another version installed here: nothing to learn about the pinned one
        requires = meta.get("Requires-Python")
        if requires and not SpecifierSet(requires).contains(python + ".0", prereleases=True):
            refused.append(f"{name}=={version} needs Python {requires}")
    assert not refused, refused
