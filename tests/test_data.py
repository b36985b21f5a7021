"""Tests of nnimaging.data: all offline (local folders and a loopback HTTP server)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnimaging import data

N_FAKE = 50  # fake MNIST: image k has every pixel 5k (so 0..245), pixel [0, 0] = 255, label k % 10
FAKE_SHAPES = {"bsd68/test001.png": (5, 7), "bsd68/test002.png": (7, 5), "set12/01.png": (4, 4),
               "train400/test_001.png": (6, 6), "train400/test_002.png": (6, 6)}
SHARED = Path(os.environ.get("NNIMAGING_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
HAS_SHARED = (SHARED / "SHA256SUMS").is_file()


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def fake_pixels(relpath: str) -> np.ndarray:
    shape = FAKE_SHAPES[relpath]
    return (np.arange(np.prod(shape)).reshape(shape) * 7 + len(relpath)) % 256


def fake_files() -> dict[str, bytes]:
    k = np.arange(N_FAKE)
    images = np.broadcast_to(5 * k[:, None, None], (N_FAKE, 28, 28)).copy()
    images[:, 0, 0] = 255
    files = {"mnist/t10k-images-idx3-ubyte.gz": idx_gz(images),
             "mnist/t10k-labels-idx1-ubyte.gz": idx_gz(k % 10)}
    files.update({relpath: png(fake_pixels(relpath)) for relpath in FAKE_SHAPES})
    return files


def cached_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No NNIMAGING_DATA, the cache in tmp_path, no proxy, and a registry of the fake files."""
    for var in ("NNIMAGING_DATA", "NNIMAGING_MNIST_URL", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY",
                "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("NNIMAGING_CACHE", str(tmp_path / "cache"))
    files = fake_files()
    monkeypatch.setattr(data, "REGISTRY", {relpath: sha256(payload) for relpath, payload in files.items()})
    return files


@pytest.fixture
def local_dir(isolated, monkeypatch, tmp_path):
    """The fake files in a folder named by NNIMAGING_DATA."""
    root = tmp_path / "data"
    for relpath, payload in isolated.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_bytes(payload)
    monkeypatch.setenv("NNIMAGING_DATA", str(root))
    return root


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.hits.append(self.path)
        if self.path not in self.server.routes:
            self.send_error(404)
            return
        body, declared_length = self.server.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(declared_length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """Loopback HTTP server; ``server.routes[path] = (body, content_length)``; ``server.url``."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.routes, srv.hits = {}, []
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def serve_dncnn(server, monkeypatch, relpath, body, declared_length=None):
    monkeypatch.setattr(data, "DNCNN_URL", server.url + "/DnCNN/")
    url = data.source_url(relpath)
    server.routes[url[len(server.url):]] = (body, len(body) if declared_length is None else declared_length)
    return url


# --- local folder with tiny synthetic files -------------------------------------------------------

@pytest.mark.parametrize("split, n", [("train", 40), ("heldout", 10), ("all", N_FAKE)])
def test_mnist_shapes_dtypes_ranges(local_dir, split, n):
    images, labels = data.load_mnist(split)
    assert images.shape == (n, 28, 28) and images.dtype == np.float32
    assert labels.shape == (n,) and labels.dtype == np.int64
    assert images.min() >= 0 and images.max() == 1.0


def test_mnist_split_is_the_fixed_permutation(local_dir):
    ids = {}
    for split in ("train", "heldout", "all"):
        images, labels = data.load_mnist(split)
        ids[split] = np.rint(images[:, 1, 1] * 255 / 5).astype(int)
        np.testing.assert_array_equal(labels, ids[split] % 10)  # labels travel with their images
    perm = np.random.default_rng(0).permutation(N_FAKE)
    np.testing.assert_array_equal(ids["train"], perm[:40])
    np.testing.assert_array_equal(ids["heldout"], perm[40:])
    np.testing.assert_array_equal(ids["all"], np.arange(N_FAKE))
    assert not set(ids["train"]) & set(ids["heldout"])
    assert set(ids["train"]) | set(ids["heldout"]) == set(range(N_FAKE))
    np.testing.assert_array_equal(data.load_mnist("train")[1], ids["train"] % 10)  # same on every call


def test_mnist_pixels_are_bytes_over_255(local_dir):
    images, _ = data.load_mnist("all")
    np.testing.assert_array_equal(images[:, 1, 1], (5 * np.arange(N_FAKE)).astype(np.float32) / 255)


def test_images_match_the_png_files(local_dir):
    images, names = data.load_images("bsd68", return_names=True)
    assert names == ["test001", "test002"]
    for image, relpath in zip(images, ["bsd68/test001.png", "bsd68/test002.png"]):
        assert image.dtype == np.float32 and image.shape == FAKE_SHAPES[relpath]
        np.testing.assert_array_equal(image, fake_pixels(relpath).astype(np.float32) / 255)
    assert [im.shape for im in data.load_images("train400")] == [(6, 6), (6, 6)]
    assert len(data.load_images("set12")) == 1



def test_a_folder_of_images_loads_like_the_named_sets(local_dir, tmp_path):
    # the same reader and conventions as load_images: the bsd68 files copied into a folder load equal
    folder = tmp_path / "mine"
    folder.mkdir()
    for relpath in ["bsd68/test001.png", "bsd68/test002.png"]:
        (folder / Path(relpath).name).write_bytes((local_dir / relpath).read_bytes())
    (folder / "notes.txt").write_text("not an image")  # ignored: not an image suffix
    rgb = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "zz.png")  # colour: converted to grayscale
    images, names = data.load_image_dir(folder, return_names=True)
    assert names == ["test001", "test002", "zz"]
    for got, expected in zip(images, data.load_images("bsd68")):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(images[2], np.asarray(Image.fromarray(rgb).convert("L"), np.float32) / 255)
    assert len(data.load_image_dir(folder)) == 3


def test_a_folder_of_images_says_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        data.load_image_dir(tmp_path / "missing")
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="expected a folder"):
        data.load_image_dir(tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("no images here")
    with pytest.raises(FileNotFoundError, match=r"no image files \(.bmp, .*\.png.*\) in .*empty"):
        data.load_image_dir(empty)
    with pytest.raises(data.DataError, match=r"file.png: not a readable image file"):
        data.load_image_dir(tmp_path)

def test_returned_arrays_do_not_share_the_cache(local_dir):
    images, labels = data.load_mnist("all")
    images[:] = -1
    labels[:] = -1
    assert data.load_mnist("all")[0].min() == 0 and data.load_mnist("all")[1].min() == 0
    data.load_images("set12")[0][:] = -1
    assert data.load_images("set12")[0].min() >= 0


def test_bad_arguments_are_named(local_dir):
    with pytest.raises(ValueError, match="'train', 'heldout' or 'all', got 'test'"):
        data.load_mnist("test")
    with pytest.raises(ValueError, match="got 'mnist'"):
        data.load_images("mnist")
    with pytest.raises(ValueError, match="unknown data file 'bsd68/nope.png'"):
        data.fetch("bsd68/nope.png")


def test_local_file_with_wrong_hash_is_refused(local_dir):
    bad = local_dir / "set12/01.png"
    bad.write_bytes(bad.read_bytes() + b"x")
    with pytest.raises(data.ChecksumError) as info:
        data.load_images("set12")
    message = str(info.value)
    assert str(bad) in message and data.REGISTRY["set12/01.png"] in message
    assert sha256(bad.read_bytes()) in message


def test_local_folder_comes_before_cache_and_network(local_dir, server, monkeypatch):
    serve_dncnn(server, monkeypatch, "set12/01.png", b"never fetched")
    assert data.fetch("set12/01.png") == local_dir / "set12/01.png"
    assert server.hits == []


# --- downloads from a loopback server --------------------------------------------------------------

def test_download_arrives_verified_and_is_cached(isolated, server, monkeypatch):
    url = serve_dncnn(server, monkeypatch, "bsd68/test002.png", isolated["bsd68/test002.png"])
    assert url.endswith("/DnCNN/testsets/BSD68/test002.png")
    path = data.fetch("bsd68/test002.png")
    assert path == data.cache_dir() / "bsd68/test002.png"
    assert path.read_bytes() == isolated["bsd68/test002.png"]
    assert data.fetch("bsd68/test002.png") == path and len(server.hits) == 1  # second call: cache


def test_corrupted_cache_file_is_downloaded_again(isolated, server, monkeypatch):
    serve_dncnn(server, monkeypatch, "set12/01.png", isolated["set12/01.png"])
    cached = data.cache_dir() / "set12/01.png"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stale")
    with pytest.warns(UserWarning, match=f"corrupt data file {cached}"):
        assert data.fetch("set12/01.png").read_bytes() == isolated["set12/01.png"]
    assert len(server.hits) == 1


def test_mnist_url_can_be_overridden_by_environment(isolated, server, monkeypatch):
    monkeypatch.setenv("NNIMAGING_MNIST_URL", server.url + "/mirror")
    for relpath in ("mnist/t10k-images-idx3-ubyte.gz", "mnist/t10k-labels-idx1-ubyte.gz"):
        body = isolated[relpath]
        server.routes["/mirror/" + relpath.split("/")[1]] = (body, len(body))
    images, labels = data.load_mnist("heldout")
    assert images.shape == (10, 28, 28) and labels.shape == (10,)


@pytest.mark.parametrize("damage", ["corrupted", "truncated", "connection cut"])
def test_bad_download_is_rejected_and_not_cached(isolated, server, monkeypatch, damage):
    good = isolated["bsd68/test001.png"]
    if damage == "corrupted":
        body, length = good[:20] + bytes([good[20] ^ 0xFF]) + good[21:], len(good)
    elif damage == "truncated":
        body, length = good[: len(good) // 2], len(good) // 2
    else:  # the server announces the full length but stops half-way
        body, length = good[: len(good) // 2], len(good)
    url = serve_dncnn(server, monkeypatch, "bsd68/test001.png", body, length)
    with pytest.raises(data.DataError) as info:
        data.load_images("bsd68")
    assert url in str(info.value)
    if damage != "connection cut":
        assert isinstance(info.value, data.ChecksumError)
        assert data.REGISTRY["bsd68/test001.png"] in str(info.value) and sha256(body) in str(info.value)
    assert cached_files(data.cache_dir()) == []  # neither under the final name nor as a temp file


def test_offline_without_data_gives_one_clear_error(isolated, monkeypatch):
    with socket.socket() as sock:  # a loopback port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("NNIMAGING_MNIST_URL", f"http://127.0.0.1:{port}/mnist/")
    with pytest.raises(data.DataUnavailableError) as info:
        data.load_mnist()
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    assert f"http://127.0.0.1:{port}/mnist/t10k-images-idx3-ubyte.gz" in message
    assert "NNIMAGING_DATA" in message and "bsd68/test001.png" in message and "set12/01.png" in message
    assert cached_files(data.cache_dir()) == []


# --- the real data (the shared data folder of the project) -------------------------------------

real = pytest.mark.skipif(not HAS_SHARED, reason=f"no shared data folder at {SHARED}")


@pytest.fixture
def shared_data(monkeypatch, tmp_path):
    monkeypatch.setenv("NNIMAGING_DATA", str(SHARED))
    monkeypatch.setenv("NNIMAGING_CACHE", str(tmp_path / "cache"))  # nothing may come from elsewhere


@real
def test_registry_is_sha256sums_of_the_shared_folder():
    rows = (line.split() for line in (SHARED / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert data.REGISTRY == {path.removeprefix("./"): digest for digest, path in rows}
    assert {relpath.split("/")[0] for relpath in data.REGISTRY} == set(data.DATASETS)


@real
def test_real_mnist(shared_data):
    images, labels = data.load_mnist("all")
    assert images.shape == (10000, 28, 28) and images.dtype == np.float32
    assert images.min() == 0 and images.max() == 1
    # class counts of the MNIST test set and its first digits (7, 2, 1, 0, 4)
    counts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    np.testing.assert_array_equal(np.bincount(labels), counts)
    np.testing.assert_array_equal(labels[:5], [7, 2, 1, 0, 4])
    train, heldout = data.load_mnist("train"), data.load_mnist("heldout")
    assert train[0].shape == (8000, 28, 28) and heldout[0].shape == (2000, 28, 28)
    perm = np.random.default_rng(0).permutation(10000)
    np.testing.assert_array_equal(heldout[1], labels[perm[8000:]])
    np.testing.assert_array_equal(train[0][:5], images[perm[:5]])


@real
@pytest.mark.parametrize("name, count, shapes", [
    ("train400", 400, {(180, 180)}),
    ("bsd68", 68, {(321, 481), (481, 321)}),
    ("set12", 12, {(256, 256), (512, 512)}),
])
def test_real_image_sets(shared_data, name, count, shapes):
    images = data.load_images(name)
    assert len(images) == count
    assert {im.shape for im in images} == shapes
    assert all(im.dtype == np.float32 and im.min() >= 0 and im.max() <= 1 for im in images)
    assert cached_files(data.cache_dir()) == []


def test_local_data_needs_no_pooch(tmp_path):
    """Training machines may lack pooch: reading NNIMAGING_DATA must not import it."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2] / "shared" / "data"
    data = os.environ.get("NNIMAGING_DATA") or str(root)
    if not (Path(data) / "set12").is_dir():
        pytest.skip("needs the shared datasets")
    code = ("import sys; sys.modules['pooch'] = None\n"
            "from nnimaging.data import load_images\n"
            "print(len(load_images('set12')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "NNIMAGING_DATA": data}, check=True)
    assert out.stdout.strip() == "12"


# --- damaged caches and misnamed folders ---------------------------------------------------------


def _dead_port() -> int:
    with socket.socket() as sock:  # a loopback port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_corrupt_cache_file_offline_is_reported_as_corrupt_and_removed(isolated, monkeypatch):
    # a corrupt file in the cache was reported as "not in the cache", and kept
    monkeypatch.setattr(data, "DNCNN_URL", f"http://127.0.0.1:{_dead_port()}/DnCNN/")
    cached = data.cache_dir() / "set12/01.png"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"half a png")
    with pytest.warns(UserWarning, match="corrupt data file"), pytest.raises(data.DataUnavailableError) as info:
        data.fetch("set12/01.png")
    message = str(info.value)
    assert "was corrupt and has been removed" in message and "not in the cache" not in message
    assert sha256(b"half a png") in message
    assert not cached.exists()


def test_missing_data_folder_is_named_as_missing(isolated, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "DNCNN_URL", f"http://127.0.0.1:{_dead_port()}/DnCNN/")
    monkeypatch.setenv("NNIMAGING_DATA", str(tmp_path / "no-such-folder"))
    with pytest.raises(data.DataUnavailableError, match=r"the folder NNIMAGING_DATA=\S*no-such-folder is missing"):
        data.fetch("set12/01.png")


def test_cache_pointing_at_a_file_gives_a_clear_error(isolated, monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("NNIMAGING_CACHE", str(tmp_path / "a-file"))
    with pytest.raises(data.DataError, match=r"NNIMAGING_CACHE=\S*a-file is a file, expected a folder"):
        data.fetch("set12/01.png")


def test_a_missing_dataset_on_the_command_line_is_one_line(isolated, monkeypatch, tmp_path):
    # a missing dataset printed 5 chained tracebacks (103 lines)
    import subprocess
    import sys

    code = ("import sys\nimport nnimaging.data as d\n"
            f"d.DNCNN_URL = 'http://127.0.0.1:{_dead_port()}/DnCNN/'\n"
            "from nnimaging._checks import run_cli\nfrom nnimaging.evaluate import main\n"
            "run_cli(main, sys.argv[1:], prog='python -m nnimaging.evaluate')\n")
    done = subprocess.run([sys.executable, "-c", code, "noisy", "--dataset", "set12", "--no-progress"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "Downloading data from" not in line]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("python -m nnimaging.evaluate: error: Cannot get the data file 'set12/01.png'")
    assert "set NNIMAGING_DATA to a folder with the datasets" in lines[0]
