"""Results files that the project's scripts wrote and the chapters read.

Numbers that need more compute than a chapter may spend (a trained model evaluated on a whole
test set, an ablation that trains several networks, a long optimisation) are produced by
``python -m nnimaging.experiments NAME`` and stored here as ``NAME.json``. Every file records
the command that made it, the software and the hardware, so a reader can check or regenerate
it; the chapters only read them::

    from nnimaging import results
    table = results.load("denoising")
    table["command"], table["hardware"]
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["RESULTS_DIR", "RUNS_RESULTS", "ResultsNotFoundError", "available", "environment", "folder", "load",
           "record", "save", "write"]

RESULTS_DIR = Path(__file__).resolve().parent
"""Directory of the shipped results files."""

RUNS_RESULTS = Path("runs") / "results"
"""Where the experiments write without ``update_shipped`` or ``results_dir`` (relative to the working folder)."""


class ResultsNotFoundError(FileNotFoundError):
    """A results file is missing; the message names the command that makes it."""


def _path(name: str, results_dir=None) -> Path:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"results name must be a plain file stem such as 'denoising', got {name!r}")
    return Path(results_dir or RESULTS_DIR) / f"{name}.json"


def available(results_dir=None) -> list[str]:
    """Names of the results files present (sorted)."""
    return sorted(p.stem for p in Path(results_dir or RESULTS_DIR).glob("*.json"))


def load(name: str, results_dir=None) -> dict:
    """Read results file ``name`` (a dict with at least ``"command"``).

    Raises
    ------
    ResultsNotFoundError
        The file does not exist; the message says how to produce it.
    ValueError
        The file is not a JSON object with a ``"command"`` entry.
    """
    path = _path(name, results_dir)
    if not path.is_file():
        have = ", ".join(available(results_dir)) or "none"
        raise ResultsNotFoundError(
            f"no results file {path.name} in {path.parent} (present: {have}); "
            f"make it with: python -m nnimaging.experiments {name.replace('_', '-')}"
        )
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(record, dict) or "command" not in record:
        raise ValueError(f"{path} is not a results file of nnimaging (expected a JSON object with a 'command' entry)")
    return record


def save(name: str, record: dict, results_dir=None, update_shipped: bool = False) -> Path:
    """Write ``record`` (which must hold ``"command"``) as ``name.json``, atomically.

    The shipped files (``results_dir`` None or :data:`RESULTS_DIR`) are written only with
    ``update_shipped=True`` (the experiments' ``--update-shipped``): a test or partial run cannot
    replace the numbers the chapters print. A failed write leaves the previous file intact.
    """
    from .._checks import UsageError, atomic_write_text

    if not isinstance(record, dict) or "command" not in record:
        raise ValueError("a results record must be a dict with a 'command' entry saying what made it")
    path = _path(name, results_dir)
    if path.parent.resolve() == RESULTS_DIR and not update_shipped:
        raise UsageError(f"refused to write the shipped results file {path}: pass update_shipped=True "
                         "(python -m nnimaging.experiments ... --update-shipped) to change it, or another results_dir")
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    return path


def environment(device: str = "cpu") -> dict:
    """Software and hardware of a run, for a results file."""
    import os
    import platform

    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        hardware = torch.cuda.get_device_name(dev)
    else:
        hardware = f"CPU ({platform.machine()}, {os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)"
    return {"hardware": hardware, "torch": str(torch.__version__), "python": platform.python_version()}


def record(command: str | None, device: str = "cpu", **payload) -> dict:
    """A results record: the command that made it, :func:`environment`, then ``payload``."""
    return {"command": command or "(called from Python)", **environment(device), **payload}


def folder(results_dir=None, update_shipped: bool = False) -> Path:
    """The folder an experiment writes to: the shipped one only when asked for explicitly."""
    from .._checks import UsageError

    if update_shipped:
        if results_dir is not None and Path(results_dir).resolve() != RESULTS_DIR:
            raise UsageError(f"update_shipped writes {RESULTS_DIR}; got another results_dir {results_dir}")
        return RESULTS_DIR
    return RUNS_RESULTS if results_dir is None else Path(results_dir)


def write(name: str, record: dict, results_dir=None, update_shipped: bool = False) -> Path:
    """:func:`save` into :func:`folder` ``(results_dir, update_shipped)``: what every experiment calls."""
    return save(name, record, folder(results_dir, update_shipped), update_shipped=update_shipped)
