"""The book's datasets: MNIST digits and the DnCNN grayscale image sets, checked by SHA-256.

Every file is looked up in this order:

1. the folder named by the environment variable ``NNIMAGING_DATA``;
2. the user cache, ``pooch.os_cache("nnimaging")`` or the folder named by ``NNIMAGING_CACHE``;
3. a download from its public source (:data:`MNIST_URL`, :data:`DNCNN_URL`) into that cache.

Both folders share one layout::

    mnist/t10k-images-idx3-ubyte.gz   mnist/t10k-labels-idx1-ubyte.gz
    train400/test_001.png ... train400/test_400.png
    bsd68/test001.png ... bsd68/test068.png
    set12/01.png ... set12/12.png

Whatever its origin, a file is used only if its SHA-256 matches :data:`REGISTRY` (read from
``data_registry.txt``). A download goes to a temporary file first and is moved into the cache only
after it passes that check, so a corrupted or truncated download never lands in the cache.

Images of your own (a folder given to ``--data-dir``) are read by :func:`load_image_dir` through the
same reader and with the same conventions (float32 in [0, 1], 8-bit values / 255), without checksums.

Only the 10,000-image MNIST *test* set is used. :func:`load_mnist` splits it with a fixed
permutation into 8,000 "train" and 2,000 "heldout" digits, so every run sees the same split.
"""

from __future__ import annotations

import functools
import gzip
import os
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from . import _checks

__all__ = [
    "load_mnist", "load_images", "load_image_dir", "crop", "IMAGE_SUFFIXES", "fetch", "source_url", "cache_dir",
    "DataError", "DataUnavailableError", "ChecksumError",
    "DATASETS", "REGISTRY", "MNIST_URL", "DNCNN_URL",
]

#: Base address of the MNIST files (environment variable ``NNIMAGING_MNIST_URL`` overrides it).
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
#: Raw files of the DnCNN authors' repository, which holds Train400, BSD68 and Set12.
DNCNN_URL = "https://raw.githubusercontent.com/cszn/DnCNN/master/"
_DNCNN_FOLDERS = {
    "train400": "TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400/",
    "bsd68": "testsets/BSD68/",
    "set12": "testsets/Set12/",
}
DATASETS = ("mnist", "train400", "bsd68", "set12")
_MNIST_FILES = ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz")
_MNIST_SEED = 0  # np.random.default_rng(0).permutation(n): first 4/5 "train", the rest "heldout"


class DataError(_checks.UserFacingError, RuntimeError):
    """A data file could not be provided."""


class DataUnavailableError(DataError):
    """A file is neither in ``NNIMAGING_DATA`` nor in the cache, and downloading it failed."""


class ChecksumError(DataError):
    """A file (local or downloaded) does not have its registered SHA-256."""


def _read_registry() -> dict[str, str]:
    text = resources.files("nnimaging").joinpath("data_registry.txt").read_text()
    rows = (line.split() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {relpath: sha256 for relpath, sha256 in rows}


#: ``{"bsd68/test001.png": "<sha256>", ...}``: every known file and its hash.
REGISTRY: dict[str, str] = _read_registry()


def _files(dataset: str) -> list[str]:
    return sorted(relpath for relpath in REGISTRY if relpath.split("/")[0] == dataset)


def source_url(relpath: str) -> str:
    """Public download address of a registered file such as ``"bsd68/test001.png"``."""
    folder, name = relpath.split("/", 1)
    if folder == "mnist":
        base = os.environ.get("NNIMAGING_MNIST_URL") or MNIST_URL
    else:
        base = DNCNN_URL.rstrip("/") + "/" + _DNCNN_FOLDERS[folder]
    return base.rstrip("/") + "/" + name


def _sha256(path: Path) -> str:
    return _checks.file_digest(path, "sha256")


def cache_dir() -> Path:
    """Folder where downloads are kept: ``$NNIMAGING_CACHE`` or ``pooch.os_cache("nnimaging")``."""
    if os.environ.get("NNIMAGING_CACHE"):
        path = Path(os.environ["NNIMAGING_CACHE"])
        if path.exists() and not path.is_dir():
            raise DataError(f"NNIMAGING_CACHE={path} is a file, expected a folder for downloaded data "
                            "(point it at a folder, or unset it to use the default cache)")
        return path
    import pooch  # imported where needed: reading NNIMAGING_DATA works without it

    return Path(pooch.os_cache("nnimaging"))


def _local_dir() -> Path | None:
    """The folder named by ``NNIMAGING_DATA``, or None when the variable is unset or empty."""
    local = os.environ.get("NNIMAGING_DATA")
    return Path(local) if local else None


def _layout() -> str:
    lines = []
    for dataset in DATASETS:
        files = _files(dataset)
        shown = files if len(files) <= 2 else [files[0], "...", files[-1]]
        lines.append("    " + "  ".join(shown))
    return "\n".join(lines)


def _unavailable(relpath: str, url: str, exc: Exception, removed: str = "") -> DataUnavailableError:
    local = _local_dir()
    if local is None:
        where = "NNIMAGING_DATA is not set"
    elif not local.is_dir():
        where = f"the folder NNIMAGING_DATA={local} is missing"
    else:
        where = f"NNIMAGING_DATA={local} has no {relpath}"
    cached = f"the copy in the cache {cache_dir()} was corrupt and has been removed" if removed else \
        f"it is not in the cache {cache_dir()}"
    return DataUnavailableError(
        f"Cannot get the data file {relpath!r} ({where}; {cached}; the download failed: {type(exc).__name__}): "
        "set NNIMAGING_DATA to a folder with the datasets (layout below) or connect to the network.\n"
        f"Downloading it from {url} failed: {type(exc).__name__}: {exc}.{removed}\n"
        "To work offline, set the environment variable NNIMAGING_DATA to a folder laid out as\n"
        f"{_layout()}\n"
        "(for example a copy of the book's shared/data folder); each file is checked against its SHA-256."
    )


def fetch(relpath: str) -> Path:
    """Local path of one verified data file, downloading it into the cache if needed.

    Parameters
    ----------
    relpath : str
        Path inside the data folder, a key of :data:`REGISTRY` (e.g. ``"set12/01.png"``).

    Returns
    -------
    pathlib.Path
        A file whose SHA-256 matches the registry.

    Raises
    ------
    ValueError
        If ``relpath`` is not registered.
    ChecksumError
        If the file in ``NNIMAGING_DATA`` or the downloaded file has the wrong SHA-256.
    DataUnavailableError
        If the file is not available locally and cannot be downloaded.
    """
    if relpath not in REGISTRY:
        raise ValueError(f"unknown data file {relpath!r}: expected a registered path such as "
                         f"'bsd68/test001.png' (datasets: {', '.join(DATASETS)})")
    expected = REGISTRY[relpath]
    url = source_url(relpath)
    local = _local_dir()
    if local is not None and (local / relpath).is_file():
        path = local / relpath
        actual = _sha256(path)
        if actual != expected:
            raise ChecksumError(f"{path} is not the registered file: expected SHA-256 {expected}, got "
                                f"{actual}. Replace it with the original ({url}) or unset NNIMAGING_DATA.")
        return path
    import pooch
    import requests  # a dependency of pooch

    target = cache_dir() / relpath
    removed = ""
    if target.is_file():
        actual = _sha256(target)
        if actual == expected:
            return target
        # a damaged copy (an interrupted write, a bad disk): say so, remove it and fetch it again
        target.unlink()
        removed = (f" The cached copy {target} was corrupt (SHA-256 {actual}, expected {expected}) "
                   "and has been removed.")
        warnings.warn(f"corrupt data file {target} removed from the cache; downloading it again", stacklevel=2)
    downloader = pooch.HTTPDownloader(progressbar=True, timeout=60)
    try:
        return Path(pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=target.name,
                                   path=target.parent, downloader=downloader))
    except requests.exceptions.RequestException as exc:
        raise _unavailable(relpath, url, exc, removed) from None
    except ValueError as exc:  # pooch's hash check of the download
        raise ChecksumError(f"The download of {relpath} from {url} was rejected and not kept in the "
                            f"cache: {exc}{removed}") from None


# Decoded files are cached as read-only uint8 arrays, keyed by (path, sha256): fetch() verifies the
# hash on every call, so a cache entry always matches the file. Callers get fresh float32 arrays.
@functools.lru_cache(maxsize=None)
def _read_idx(path: str, sha256: str) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:3] != b"\x00\x00\x08":
        raise DataError(f"{path}: expected an IDX file of unsigned bytes, got magic number {raw[:4].hex()}")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    values = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)  # read-only view of bytes
    if values.size != np.prod(shape):
        raise DataError(f"{path}: header says shape {shape}, but the file holds {values.size} values")
    return values.reshape(shape)


#: File types :func:`load_image_dir` reads (any other file in the folder is ignored).
IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".pgm", ".png", ".tif", ".tiff")


def _read_gray(path, convert: bool = False) -> np.ndarray:
    """The one image reader: an (H, W) uint8 array of a grayscale image file.

    ``convert``: turn a colour (or 16-bit) image into 8-bit grayscale with PIL's ``convert("L")``;
    otherwise anything but an 8-bit grayscale image (mode ``"L"``) is a :class:`DataError`.
    """
    try:
        with Image.open(path) as img:
            if img.mode != "L" and not convert:
                raise DataError(f"{path}: expected a grayscale PNG (mode 'L'), got mode {img.mode!r}")
            return np.array(img.convert("L") if img.mode != "L" else img, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError) as err:  # PIL's errors for a damaged or unknown file
        raise DataError(f"{path}: not a readable image file ({err})") from None


def _to_float(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels as the book's images: float32 in [0, 1], ``value / 255``."""
    return pixels.astype(np.float32) / 255


@functools.lru_cache(maxsize=None)
def _read_png(path: str, sha256: str) -> np.ndarray:
    pixels = _read_gray(path)
    pixels.setflags(write=False)
    return pixels


def load_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST handwritten digits (the official 10,000-image *test* set), split deterministically.

    Parameters
    ----------
    split : {"train", "heldout", "all"}
        ``"train"``: 8,000 digits; ``"heldout"``: the other 2,000; ``"all"``: the 10,000 in file order.
        The split is ``np.random.default_rng(0).permutation(10000)``: its first 8,000 entries index
        "train" and the rest "heldout", in that (shuffled) order.

    Returns
    -------
    images : (N, 28, 28) float32 array in [0, 1]
        Pixel intensities (0 = background, 1 = ink).
    labels : (N,) int64 array in {0, ..., 9}
        The digit shown in each image.
    """
    if split not in ("train", "heldout", "all"):
        raise ValueError(f"split must be 'train', 'heldout' or 'all', got {split!r}")
    images, labels = (_read_idx(str(fetch(rel)), REGISTRY[rel]) for rel in _MNIST_FILES)
    if images.ndim != 3 or labels.shape != images.shape[:1]:
        raise DataError(f"MNIST images {images.shape} and labels {labels.shape} do not match")
    n = len(labels)
    index = np.arange(n)
    if split != "all":
        perm = np.random.default_rng(_MNIST_SEED).permutation(n)
        index = perm[: n * 4 // 5] if split == "train" else perm[n * 4 // 5:]
    return images[index].astype(np.float32) / 255, labels[index].astype(np.int64)


def load_images(name: str, return_names: bool = False):
    """Grayscale images of one DnCNN image set, in file-name order.

    Parameters
    ----------
    name : {"train400", "bsd68", "set12"}
        ``"train400"``: 400 training images of 180x180 (crops of the Berkeley Segmentation Dataset);
        ``"bsd68"``: 68 test images of 321x481 or 481x321; ``"set12"``: 12 test images, 01-07 of
        256x256 and 08-12 of 512x512.
    return_names : bool
        Also return the file names without extension (``"test001"``, ``"01"``, ...).

    Returns
    -------
    images : list of (H, W) float32 arrays in [0, 1]
        Fresh arrays: changing them does not affect later calls.
    names : list of str
        Only if ``return_names`` is true.
    """
    if name not in _DNCNN_FOLDERS:
        raise ValueError(f"name must be one of {', '.join(map(repr, _DNCNN_FOLDERS))}, got {name!r}")
    files = _files(name)
    images = [_to_float(_read_png(str(fetch(rel)), REGISTRY[rel])) for rel in files]
    return (images, [Path(rel).stem for rel in files]) if return_names else images


def load_image_dir(directory, return_names: bool = False):
    """Every image file of a folder of your own, in file-name order, as grayscale images.

    The same conventions as :func:`load_images` (float32, 8-bit values / 255), for training or
    testing on images that are not one of the book's sets (``--data-dir`` of the training and
    evaluation command lines). Colour images are converted to grayscale; files whose suffix is
    not in :data:`IMAGE_SUFFIXES` are ignored; nothing is checked against a registry.

    Parameters
    ----------
    directory : str or Path
        The folder (not searched recursively).
    return_names : bool
        Also return the file names without extension.

    Returns
    -------
    images : list of (H, W) float32 arrays in [0, 1]
    names : list of str
        Only if ``return_names`` is true.

    Raises
    ------
    FileNotFoundError
        The folder does not exist or holds no image file.
    NotADirectoryError
        ``directory`` is a file.
    DataError
        A file with an image suffix cannot be read as an image.
    """
    directory = Path(directory)
    if not directory.exists():
        raise FileNotFoundError(f"{directory}: no such folder (expected a folder of image files)")
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file, expected a folder of image files")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in {directory}")
    images = [_to_float(_read_gray(p, convert=True)) for p in files]
    return (images, [p.stem for p in files]) if return_names else images


def crop(image: str, top: int, left: int, size: int) -> np.ndarray:
    """A ``size`` x ``size`` crop of a test image named ``"DATASET/NAME"``, such as ``"set12/01"``.

    The one crop helper of the book: demos, experiments and chapters name a test image and a
    square inside it.

    Parameters
    ----------
    image : str
        Data set and file stem (``"set12/01"`` ... ``"set12/12"``, ``"bsd68/test001"`` ...).
    top, left : int >= 0
        Row and column of the crop's upper-left pixel.
    size : int >= 1
        Height and width of the crop.

    Returns
    -------
    (size, size) float32 array in [0, 1] (a copy).
    """
    dataset, sep, stem = str(image).partition("/")
    if not sep:
        raise ValueError(f"image must look like 'set12/01' (dataset/name), got {image!r}")
    top, left = _checks.positive_int("top", top, 0), _checks.positive_int("left", left, 0)
    size = _checks.positive_int("size", size, 1)
    images, names = load_images(dataset, return_names=True)
    if stem not in names:
        raise ValueError(f"no image {stem!r} in {dataset}; names: {', '.join(names)}")
    full = images[names.index(stem)]
    h, w = full.shape
    if top + size > h or left + size > w:
        raise ValueError(f"crop rows {top}..{top + size}, columns {left}..{left + size} does not fit "
                         f"in the {h} x {w} image {image}")
    return np.ascontiguousarray(full[top:top + size, left:left + size])
