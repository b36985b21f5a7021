"""The book's store of trained weights: a manifest, checksum-verified loading, saving and installing.

Pretrained weights live in ``src/nnimaging/weights/`` (``manifest.json`` plus one ``NAME.pt``
file per model, a ``torch.save``-d state dict). :func:`available` lists them with their training
settings; :func:`load_pretrained` verifies the file's SHA-256 against the manifest, checks that the
state dict fits the architecture, and returns the model in eval mode on the CPU.
:func:`save_pretrained` writes both (the training CLI ``python -m nnimaging.train ... --export NAME``
calls it); :func:`install_weights` copies weights exported elsewhere (a GPU machine) into the store,
checked by SHA-256. The architectures themselves are in :mod:`nnimaging.models`, which also
offers every name of this module (``weightstore.load_pretrained`` is this module's function).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import torch
from torch import nn

from . import _checks
from . import published as authors  # the DnCNN authors' weights (available() has a 'published' flag)
from ._checks import WeightsNotFoundError
from .models import ARCHITECTURES, Denoiser, build_model, count_parameters

__all__ = [
    "available",
    "load_pretrained",
    "load_run",
    "save_pretrained",
    "install_weights",
    "check_state_dict",
    "sha256_file",
    "training_stages",
    "wiener_training",
    "WeightsNotFoundError",
    "WEIGHTS_DIR",
    "MANIFEST_NAME",
    "RECIPES",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
"""Directory of the shipped weights and their ``manifest.json``."""

MANIFEST_NAME = "manifest.json"

RECIPES = {
    "dncnn-s25": "python -m nnimaging.train dncnn --sigma 25 --out runs/dncnn-s25 --export dncnn-s25",
    "dncnn-b": "python -m nnimaging.train dncnn --depth 20 --sigma-range 0 55 --out runs/dncnn-b --export dncnn-b",
    "unet-denoise": (
        "python -m nnimaging.train unet --sigma-range 0 55 --patch-size 64 --batch-size 64 "
        "--out runs/unet-denoise --export unet-denoise"
    ),
    "unet-deblur": (
        "python -m nnimaging.train unet --width 16 --blur motion:9:30 --sigma-range 1 6 --patch-size 64 "
        "--batch-size 64 --out runs/unet-deblur --export unet-deblur"
    ),
    "unet-wiener": (
        "python -m nnimaging.train unet --width 16 --blur motion:9:30 --wiener-nsr 0.01 --sigma-range 1 6 "
        "--patch-size 64 --batch-size 64 --out runs/unet-wiener --export unet-wiener"
    ),
}
"""The full-length command that trains and exports each shipped model (the paper's 80,000 steps;
on a GPU). The weights shipped now come from shorter CPU runs; each manifest entry records the
command that actually made it."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ----------------------------------------------------------------------------------------
# pretrained weights
# ----------------------------------------------------------------------------------------


def sha256_file(path) -> str:
    """Hex SHA-256 digest of a file."""
    return _checks.file_digest(path, "sha256")


def _weights_dir(weights_dir) -> Path:
    return Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR


_REQUIRED = ("name", "file", "architecture", "kwargs", "sha256")


def _check_entry_file(entry: dict, folder: Path, source) -> None:
    """A manifest entry's ``file`` must name a file inside its weights folder (no absolute path, no ``..``)."""
    try:
        _checks.inside(folder, entry["file"], what=f"the file of weights {entry.get('name')!r} in {source}")
    except _checks.UsageError as err:
        raise _checks.UsageError(f"refused: {err}") from None


def _read_manifest(weights_dir: Path) -> list[dict]:
    path = weights_dir / MANIFEST_NAME
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"weights manifest {path} is not valid JSON: {err}") from None
    if not isinstance(entries, list):
        raise ValueError(f"weights manifest {path} must hold a JSON list of entries, got {type(entries).__name__}")
    seen = set()
    for i, entry in enumerate(entries):
        missing = [k for k in _REQUIRED if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise ValueError(f"entry {i} of weights manifest {path} lacks the keys {missing}")
        if entry["name"] in seen:
            raise ValueError(f"weights manifest {path} lists the name {entry['name']!r} twice")
        seen.add(entry["name"])
        _check_entry_file(entry, weights_dir, path)
    return entries


def _recipe(name: str) -> str:
    return RECIPES.get(name, f"python -m nnimaging.train {{dncnn,unet}} [options] --out runs/{name} --export {name}")


def available(weights_dir=None, published: bool | None = None) -> list[dict]:
    """The pretrained models: the book's own and the DnCNN authors' published weights, sorted by name.

    Parameters
    ----------
    weights_dir : path, optional
        Directory with ``manifest.json`` (default: the package's ``weights/``).
    published : bool, optional
        Also list the published weights of :mod:`nnimaging.published` (``zhang2017-...``). By
        default they are listed with the package's weights, not with another ``weights_dir``.

    Returns
    -------
    list of dict
        One manifest entry per model: ``name``, ``file``, ``architecture``, ``kwargs``
        (constructor arguments), ``training`` (dataset, noise, steps, ... as recorded by the
        training CLI) and ``sha256``. The published entries also have ``source`` (their
        download address), ``description`` and ``published`` (the paper's mean PSNRs).
    """
    entries = [copy.deepcopy(e) for e in _read_manifest(_weights_dir(weights_dir))]
    if weights_dir is None if published is None else published:
        entries += authors.entries()
    return sorted(entries, key=lambda e: e["name"])


def check_state_dict(model: nn.Module, state_dict: dict, source: str = "state dict") -> None:
    """Raise ``ValueError`` listing every missing key, unexpected key and shape mismatch.

    Parameters
    ----------
    model : nn.Module
        The model the weights are meant for.
    state_dict : dict of str -> tensor
        The weights (as returned by ``model.state_dict()``).
    source : str
        Name used in the message (e.g. the file path).
    """
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"incompatible weights file {source}: expected a dict of tensors (a state dict)")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or mismatched:
        what = getattr(model, "config", {"architecture": type(model).__name__})
        raise ValueError(
            f"incompatible weights file {source} for {what}: missing keys {missing}, "
            f"unexpected keys {unexpected}, shape mismatch {mismatched}"
        )


def load_pretrained(name: str, weights_dir=None) -> Denoiser:
    """Load a pretrained model by name, verified, in eval mode on the CPU.

    Parameters
    ----------
    name : str
        A name listed by :func:`available`, e.g. ``"dncnn-s25"``. The names of the DnCNN
        authors' weights (``"zhang2017-dncnn-s25"``, ...; :data:`nnimaging.published.NAMES`) are
        served by :func:`nnimaging.published.load`, from ``NNIMAGING_WEIGHTS``, the cache or a
        verified download, whatever ``weights_dir`` says.
    weights_dir : path, optional
        Directory with ``manifest.json`` and the weight files (default: the package's).

    Returns
    -------
    Denoiser
        The model, in eval mode, on the CPU; its manifest entry is in ``model.pretrained``.

    Raises
    ------
    WeightsNotFoundError
        No such name in the manifest or the file is missing; the message gives the command
        that trains and exports the model.
    ValueError
        SHA-256 mismatch, or a state dict that does not fit the architecture.
    """
    if name in authors.NAMES:  # the DnCNN authors' files, read as HDF5 (nnimaging.published)
        return authors.load(name)
    wdir = _weights_dir(weights_dir)
    if not (wdir / MANIFEST_NAME).exists():
        raise WeightsNotFoundError(
            f"manifest missing: no weights named {name!r} in {wdir}, which has no {MANIFEST_NAME} (none yet "
            f"exported there). Restore the package's weights folder, pass the weights_dir that holds "
            f"{MANIFEST_NAME}, or train and export {name!r} with:\n    {_recipe(name)}"
        )
    entries = {e["name"]: e for e in _read_manifest(wdir)}
    if name not in entries:
        names = ", ".join(sorted(entries)) or "none yet"
        raise WeightsNotFoundError(
            f"no pretrained weights named {name!r} in {wdir} (available: {names}). "
            f"Train and export them with:\n    {_recipe(name)}"
        )
    entry = entries[name]
    path = wdir / entry["file"]
    if not path.is_file():
        raise WeightsNotFoundError(
            f"the manifest in {wdir} lists {name!r} but its file {path} is missing. "
            f"Train and export it with:\n    {_recipe(name)}"
        )
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ValueError(
            f"checksum mismatch for {path}: manifest says sha256 {entry['sha256']}, file has {digest}; "
            "the file is corrupted or the manifest is out of date"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(f"incompatible weights file {path}: cannot read it as a state dict ({err})") from None
    model = build_model(entry["architecture"], **entry["kwargs"])
    check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    model.eval()
    model.pretrained = copy.deepcopy(entry)
    return model


def training_stages(entry: dict) -> list[dict]:
    """How a model was trained, stage by stage, oldest first (a manifest entry, or ``model.pretrained``).

    A run started from other weights (``python -m nnimaging.train --init``) records them and their
    own training under ``training["init"]``; this follows that chain. Each stage is a training
    record without its ``init``: ``steps``, ``batch_size``, ``elapsed_s``, ``command`` ...
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("training"), dict):
        raise ValueError("expected a manifest entry with a 'training' record (model.pretrained or weightstore.available())")
    stages, record = [], entry["training"]
    while record:
        stages.append({k: v for k, v in record.items() if k != "init"})
        record = (record.get("init") or {}).get("training")
    return stages[::-1]


def wiener_training(entry: dict, name: str) -> tuple[str, float]:
    """The blur spec and Wiener NSR a network was trained with, from its manifest entry.

    Raises ``ValueError`` unless the entry says the network was trained on Wiener output.
    """
    d = entry.get("training", {}).get("degradation", {})
    if d.get("task") != "deblur" or d.get("wiener_nsr") is None:
        raise ValueError(f"{name} was not trained on Wiener output (its degradation is {d})")
    return d["blur"], float(d["wiener_nsr"])


def load_run(run_dir) -> Denoiser:
    """Load the final weights of a training run folder of :mod:`nnimaging.train`, verified.

    The folder holds the weights and ``manifest_entry.json`` (written when the run finished);
    a one-entry ``manifest.json`` is written beside them so :func:`load_pretrained` reads them.
    """
    run_dir = Path(run_dir)
    entry_path = run_dir / "manifest_entry.json"
    if not entry_path.is_file():
        raise WeightsNotFoundError(f"{run_dir} has no manifest_entry.json: the run has not finished "
                                   "(continue it with --resume)")
    entry = json.loads(entry_path.read_text(encoding="utf-8"))
    _checks.atomic_write_json(run_dir / MANIFEST_NAME, [entry])
    return load_pretrained(entry["name"], weights_dir=run_dir)


def save_pretrained(
    model: Denoiser, name: str, training: dict | None = None, weights_dir=None, update_manifest: bool = True
) -> dict:
    """Write ``NAME.pt`` (the state dict on the CPU) and its manifest entry.

    Parameters
    ----------
    model : Denoiser
        A model of :mod:`nnimaging.models` (its ``config`` says how to rebuild it).
    name : str
        Name of the weights (letters, digits, ``_ . -``).
    training : dict, optional
        Training settings to record (JSON-serialisable).
    weights_dir : path, optional
        Target directory (default: the package's ``weights/``); created if needed.
    update_manifest : bool
        Add (or replace) the entry in ``weights_dir/manifest.json``.

    Returns
    -------
    dict
        The manifest entry.
    """
    if not _NAME_RE.match(name):
        raise ValueError(f"weights name must use letters, digits, '_', '.', '-', got {name!r}")
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or config.get("architecture") not in ARCHITECTURES:
        raise TypeError(f"expected a model built by nnimaging.models (DnCNN, UNet), got {type(model).__name__}")
    wdir = _weights_dir(weights_dir)
    wdir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    path = wdir / f"{name}.pt"
    json.dumps(copy.deepcopy(training) if training else {})  # fail before writing if not JSON-serialisable
    if update_manifest:
        entries = _read_manifest(wdir)  # a damaged manifest fails here, before any file is written
    _checks.atomic_torch_save(state, path)
    entry = {
        "name": name,
        "file": path.name,
        "architecture": config["architecture"],
        "kwargs": copy.deepcopy(config["kwargs"]),
        "parameters": count_parameters(model),
        "training": copy.deepcopy(training) if training else {},
        "sha256": sha256_file(path),
    }
    json.dumps(entry)  # fail early if training settings are not JSON-serialisable
    if update_manifest:
        entries = [e for e in entries if e["name"] != name] + [entry]
        entries.sort(key=lambda e: e["name"])
        _checks.atomic_write_json(wdir / MANIFEST_NAME, entries)
    return entry


def install_weights(source_dir, names=None, weights_dir=None) -> list[dict]:
    """Copy exported weights (for example from a GPU machine) into a weights directory.

    Reads ``source_dir/manifest.json`` (written by ``--export NAME --weights-dir
    source_dir``) or, failing that, ``source_dir/manifest_entry.json`` (written into every
    training run directory), verifies each file's SHA-256, copies the files and merges the
    entries into ``weights_dir/manifest.json`` (replacing entries of the same name).

    Parameters
    ----------
    source_dir : path
        Directory with the weight files and their manifest (or manifest entry).
    names : list of str, optional
        Only these entries (default: all).
    weights_dir : path, optional
        Target (default: the package's ``weights/``).

    Returns
    -------
    list of dict
        The installed entries.
    """
    source = Path(source_dir)
    if (source / MANIFEST_NAME).is_file():
        entries = _read_manifest(source)
    elif (source / "manifest_entry.json").is_file():
        entries = [json.loads((source / "manifest_entry.json").read_text(encoding="utf-8"))]
        missing = [k for k in _REQUIRED if not isinstance(entries[0], dict) or k not in entries[0]]
        if missing:
            raise ValueError(f"{source / 'manifest_entry.json'} lacks the keys {missing}")
        if not _NAME_RE.match(str(entries[0]["name"])):
            raise _checks.UsageError(f"refused: weights name {entries[0]['name']!r} in {source / 'manifest_entry.json'} "
                                     "must use letters, digits, '_', '.', '-'")
        _check_entry_file(entries[0], source, source / "manifest_entry.json")
    else:
        raise FileNotFoundError(f"neither {MANIFEST_NAME} nor manifest_entry.json in {source}")
    if names is not None:
        unknown = sorted(set(names) - {e["name"] for e in entries})
        if unknown:
            raise WeightsNotFoundError(f"{source} has no weights named {unknown}")
        entries = [e for e in entries if e["name"] in set(names)]
    for entry in entries:
        digest = sha256_file(source / entry["file"])
        if digest != entry["sha256"]:
            raise ValueError(f"checksum mismatch for {source / entry['file']}: entry says {entry['sha256']}, file has {digest}")
        model = build_model(entry["architecture"], **entry["kwargs"])
        check_state_dict(model, torch.load(source / entry["file"], map_location="cpu", weights_only=True), entry["file"])
    target = _weights_dir(weights_dir)
    target.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        _check_entry_file(entry, target, f"the target folder {target}")
    existing = _read_manifest(target)  # a damaged target manifest fails here, before any copy
    for entry in entries:
        if (source / entry["file"]).resolve() != (target / entry["file"]).resolve():
            _checks.atomic_copy(source / entry["file"], target / entry["file"])
    installed = {e["name"] for e in entries}
    merged = [e for e in existing if e["name"] not in installed] + [copy.deepcopy(e) for e in entries]
    merged.sort(key=lambda e: e["name"])
    _checks.atomic_write_json(target / MANIFEST_NAME, merged)
    return entries
