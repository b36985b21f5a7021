"""The package's structure as readers meet it: one import, every module reachable and documented."""

from __future__ import annotations

import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nnimaging

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "nnimaging"


def package_modules() -> list[str]:
    """Every module of src/nnimaging, by its name inside the package ("models", "demo.live").

    Found from the files, as Python finds them; subpackages' modules are named with a dot.
    """
    names = []

    def walk(folder: Path, prefix: str):
        for m in pkgutil.iter_modules([str(folder)]):
            names.append(prefix + m.name)
            if m.ispkg:
                walk(folder / m.name, f"{prefix}{m.name}.")

    walk(PACKAGE, "")
    return sorted(names)


def readme_module_table() -> list[str]:
    """The modules named in the first column of README.md's table of the package's modules."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^\| module \| what \|\n\| --- \| --- \|\n((?:\|.*\n)+)", text, re.M)
    assert match, "README.md has no '| module | what |' table"
    named = []
    for row in match.group(1).splitlines():
        first = row.split("|")[1]
        for name in re.findall(r"`([\w.]+)`", first):
            named.append(name.removeprefix("nnimaging.").removeprefix("nnimaging"))
    return named


def test_the_module_finder_sees_the_package():
    found = package_modules()
    assert {"models", "demo", "demo.live", "notebook", "_checks", "__main__"} <= set(found)


def test_readme_module_table_lists_every_module():
    listed = set(readme_module_table())
    missing = [m for m in package_modules() if m not in listed]
    assert not missing, (f"README.md's module table (under 'The package, by concern') does not "
                         f"name {missing}: add a row or add them to a row's first column")
    unknown = sorted(listed - set(package_modules()) - {""})
    assert not unknown, f"README.md's module table names modules that do not exist: {unknown}"


def public_modules() -> list[str]:
    return [m for m in package_modules() if "." not in m and not m.startswith("_")]


@pytest.mark.parametrize("name", public_modules())
def test_every_public_module_is_an_attribute_of_the_package(name):
    nni = nnimaging
    assert name in dir(nni)
    assert getattr(nni, name) is importlib.import_module(f"nnimaging.{name}")


def test_unknown_attribute_names_what_exists():
    with pytest.raises(AttributeError) as err:
        nnimaging.no_such_module  # noqa: B018
    message = str(err.value)
    assert "'no_such_module'" in message
    for name in ("setup", "show_source", "models", "demo", "conv"):
        assert name in message
    assert not hasattr(nnimaging, "_checks_typo")
    with pytest.raises(ImportError):
        from nnimaging import no_such_module  # noqa: F401


def test_top_level_names_are_kept():
    from nnimaging.notebook import setup, show_source

    assert nnimaging.setup is setup and nnimaging.show_source is show_source
    assert isinstance(nnimaging.__version__, str)
    assert set(nnimaging.__all__) == {"setup", "show_source", "__version__"}


def test_importing_the_package_does_not_import_torch():
    """``import nnimaging`` (and dir(), and the top-level names) stay light; a module loads on use."""
    code = ("import sys, nnimaging as nni\n"
            "names = dir(nni); nni.setup; nni.__version__\n"
            "assert 'models' in names, names\n"
            "heavy = sorted(m for m in ('torch', 'matplotlib', 'sphinx', 'nnimaging.models') if m in sys.modules)\n"
            "assert not heavy, heavy\n"
            "nni.metrics\n"
            "assert 'nnimaging.metrics' in sys.modules\n"
            "print('ok')\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
