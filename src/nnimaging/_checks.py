"""One home for the package's input checks, its atomic file writes and its command-line error handling.

* **Checks at the door**: :func:`positive_int`, :func:`positive_number`, :func:`image_values` ...
  raise :class:`UsageError` (a ``ValueError``) with a message that says what was expected and what
  was received, before any work starts.
* **Atomic writes**: every file the package writes goes through :func:`atomic_path` (a temporary
  file in the same folder, then ``os.replace``), so a failed write (disk full, ``ulimit -f``, an
  interruption) leaves the previous version intact. :func:`inside` refuses a path that would leave
  its folder.
* **Command lines**: :func:`run_cli` runs a ``main(argv)`` and turns a user error into one line on
  stderr and exit status 2; a bug still prints its traceback.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "SIGMA_UNIT",
    "UsageError",
    "UsageTypeError",
    "UserFacingError",
    "WeightsNotFoundError",
    "positive_int",
    "positive_number",
    "vector",
    "non_negative_number",
    "image_values",
    "inside",
    "writable_file",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_torch_save",
    "atomic_copy",
    "float_image",
    "to_numpy",
    "run_cli",
]


SIGMA_UNIT = " on the 0..255 scale"
"""What a noise level's error message adds after its bound: the book states sigma for 8-bit values."""


class UsageError(ValueError):
    """Bad input from the user (a setting, a path, a file): command lines print it as one line, exit 2."""


class UsageTypeError(UsageError, TypeError):
    """Input of the wrong type (a string for a number, an integer image for a float one): a
    :class:`UsageError`, and a ``TypeError`` for callers that catch that."""


class UserFacingError(Exception):
    """Mixed into the errors of other modules that a command line reports as one line (missing data,
    missing weights), so that :func:`run_cli` recognises them without importing those modules."""


class WeightsNotFoundError(UserFacingError, LookupError):
    """No weights of that name in the manifest, or the file it names is missing or cannot be fetched.

    Raised by :mod:`nnimaging.weightstore` (the book's weights) and :mod:`nnimaging.published` (the
    DnCNN authors'), so it lives here, below both."""

    def __str__(self) -> str:  # LookupError would print the repr of the message
        return str(self.args[0]) if self.args else ""


# ----------------------------------------------------------------------------------------
# numbers and images
# ----------------------------------------------------------------------------------------


def _scalar(value):
    """A 0-d numpy array or tensor as its Python number; anything else unchanged."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def _is_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or :class:`UsageError` if it is not an integer >= ``minimum``.

    Integral floats (``3.0``) pass; booleans, strings, ``2.5``, NaN and infinities do not.
    """
    number = _scalar(value)
    if not _is_number(number):
        raise UsageTypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if not math.isfinite(number) or int(number) != number or number < minimum:
        raise UsageError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(number)


def vector(name: str, value) -> np.ndarray:
    """``value`` as a non-empty 1-D float array, or :class:`UsageError` naming its shape."""
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise UsageError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    return arr


def _number(name: str, value, bound: str, unit: str) -> float:
    number = _scalar(value)
    expected = f"{name} must be a finite number {bound}{unit}, got {value!r}"
    if not _is_number(number):
        raise UsageTypeError(expected)
    if not math.isfinite(number) or (number <= 0 if bound == "> 0" else number < 0):
        raise UsageError(expected)
    return float(number)


def positive_number(name: str, value, unit: str = "") -> float:
    """``value`` as a float, or :class:`UsageError` unless it is a finite number > 0.

    ``unit`` is added to the message after the bound (``" on the 0..255 scale"``). A 0-d array or
    tensor counts as its number.
    """
    return _number(name, value, "> 0", unit)


def non_negative_number(name: str, value, unit: str = "") -> float:
    """``value`` as a float, or :class:`UsageError` unless it is a finite number >= 0 (``unit``: as
    in :func:`positive_number`)."""
    return _number(name, value, ">= 0", unit)


def image_values(image, name: str = "image", low: float | None = 0.0, high: float | None = 1.0) -> None:
    """Raise :class:`UsageError` if ``image`` holds NaN or inf, or values outside ``[low, high]``.

    ``low``/``high`` None: only finiteness is checked (noisy images leave [0, 1] legitimately).
    Works on numpy arrays and torch tensors (one reduction each; no copy).
    """
    if hasattr(image, "detach"):  # a torch tensor: reduce where it lives, then look at a few numbers
        import torch

        image = image.detach()  # a check, not part of the graph (and no warning for tensors that need grad)
        bad = int((~torch.isfinite(image)).sum())
        lo, hi = (float(image.min()), float(image.max())) if image.numel() and not bad else (0.0, 0.0)
    else:
        array = np.asarray(image)
        bad = int(array.size - np.isfinite(array).sum())
        lo, hi = (float(array.min()), float(array.max())) if array.size and not bad else (0.0, 0.0)
    if bad:
        raise UsageError(f"{name}: expected finite values, got {bad} NaN or infinite value(s)")
    if (low is not None and lo < low) or (high is not None and hi > high):
        scale = " (8-bit values must be divided by 255)" if high == 1.0 and hi > 1.0 else ""
        raise UsageError(f"{name}: expected values in [{low:g}, {high:g}]{scale}, got values in [{lo:.4g}, {hi:.4g}]")


def to_numpy(value, dtype=None) -> np.ndarray:
    """A torch tensor (detached, copied to the CPU) or anything array-like, as a numpy array."""
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def float_image(name: str, image, keep_dtype: bool = False) -> np.ndarray:
    """A 2-D float image (array or tensor) with finite values, or :class:`UsageError`.

    Returned as a float64 array, or with its own float dtype when ``keep_dtype`` (for figures
    that must show exactly the pixels they were given). An integer dtype raises
    :class:`UsageTypeError`.
    """
    arr = to_numpy(image)
    if arr.ndim != 2:
        raise UsageError(f"{name} must be an (H, W) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise UsageTypeError(f"{name} must be a float array (values in [0, 1]), got dtype {arr.dtype}; "
                             "divide 8-bit images by 255")
    image_values(arr, name, None, None)
    return arr if keep_dtype else arr.astype(np.float64)


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``sha256``, ``sha512``...), read in blocks: one helper for every checksum."""
    import hashlib

    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, algorithm).hexdigest()


# ----------------------------------------------------------------------------------------
# paths and atomic writes
# ----------------------------------------------------------------------------------------


def inside(folder, relpath, what: str = "file") -> Path:
    """``folder / relpath``, or :class:`UsageError` if ``relpath`` is absolute or leaves ``folder``.

    Refuses ``..`` parts and absolute paths outright, and any path that resolves (symbolic links
    followed) outside ``folder``.
    """
    rel = str(relpath)
    parts = Path(rel).parts
    if not rel or Path(rel).is_absolute() or rel.startswith(("/", "\\")) or ".." in parts or "\\" in rel \
            or (len(rel) > 1 and rel[1] == ":"):
        raise UsageError(f"{what} must be a relative path inside {folder}, got {rel!r}")
    folder = Path(folder)
    path = folder / rel
    root = folder.resolve()
    if root != path.resolve() and root not in path.resolve().parents:
        raise UsageError(f"{what} {rel!r} resolves outside {folder} (to {path.resolve()})")
    return path


def writable_file(path, what: str = "output file") -> Path:
    """Check, before any work, that ``path`` can be written as a file: not a folder, its parent a
    folder (created if missing) that we may write in. Returns it as a ``Path``."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; expected a file path such as {path / 'results.json'}")
    parent = path.parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise UsageError(f"{what} {path}: {p} is a file, expected a folder")
            break
    parent.mkdir(parents=True, exist_ok=True)
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{what} {path}: no permission to write in {parent}")
    return path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; when the block succeeds, move it onto ``path``.

    The temporary file lives in the same folder (so the final ``os.replace`` is atomic) and is
    removed if the block raises: a failed write leaves the previous version of ``path`` intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb") as f:  # the bytes reach the disk before the name points at them
            os.fsync(f.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON (with a final newline) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def atomic_torch_save(obj, path) -> Path:
    """``torch.save(obj, path)``, atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def atomic_copy(source, path) -> Path:
    """Copy the file ``source`` to ``path`` atomically."""
    import shutil

    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)
    return Path(path)


# ----------------------------------------------------------------------------------------
# command lines
# ----------------------------------------------------------------------------------------


_USER_ERRORS = (UsageError, UserFacingError, FileNotFoundError, FileExistsError, NotADirectoryError,
                IsADirectoryError, PermissionError)


def run_cli(main, argv=None, prog: str | None = None):
    """Run ``main(argv)`` as a command: a user error prints ``PROG: error: MESSAGE`` (its first line)
    and exits with status 2; an interruption exits with 128 + the signal number; a bug keeps its
    traceback. Set ``NNIMAGING_TRACEBACK=1`` to see the traceback of user errors too."""
    prog = prog or os.path.basename(sys.argv[0])
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main(argv)
    except KeyboardInterrupt as err:
        signum = getattr(err, "signum", 2)
        print(f"{prog}: {err or 'interrupted'}", file=sys.stderr)
        raise SystemExit(128 + int(signum)) from None
    except _USER_ERRORS as err:
        if os.environ.get("NNIMAGING_TRACEBACK"):
            raise
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()] or [type(err).__name__]
        message = lines[0]
        if message.endswith(":") and len(lines) > 1:  # "... train and export it with:" and the command
            message += " " + lines[1]
        print(f"{prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
