"""No data lost on a failed write, a traversal attempt, a damaged checkpoint or a partial experiment.

Each test is written as the failure it prevents: a write cut by ``ulimit -f`` (``RLIMIT_FSIZE`` in a
subprocess) or by a write that raises half-way must leave the previous file intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from nnimaging import _checks, evaluate, experiments, models, results, weightstore


def _tiny(seed=0, depth=2, width=1):
    torch.manual_seed(seed)
    return models.DnCNN(depth, width)


def _run_limited(code: str, limit: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python whose files may not grow past ``limit`` bytes (``ulimit -f``).

    ``LIMIT()`` in the code applies the limit (after the imports). SIGXFSZ is ignored, so a write
    past the limit fails with EFBIG the way a full disk fails, instead of killing the process.
    """
    prelude = textwrap.dedent(f"""
        import resource, signal
        def LIMIT():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
    """)
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _no_temp_files(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], "temporary files left behind"


# ------------------------------------------------------------------------------ the helper


def _disk_full_half_way(monkeypatch):
    """Every Path.write_text writes half its text, then fails as a full disk would."""
    real = Path.write_text

    def half_then_disk_full(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_disk_full)


def test_atomic_write_that_fails_half_way_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "table.json"
    _checks.atomic_write_json(path, {"rows": [1, 2, 3]})
    _disk_full_half_way(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        _checks.atomic_write_json(path, {"rows": list(range(1000))})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"rows": [1, 2, 3]}
    _no_temp_files(tmp_path)


def test_atomic_write_keeps_the_file_mode(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("old")
    path.chmod(0o640)
    _checks.atomic_write_text(path, "new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o640


# ------------------------------------------------------------------------------ weights and manifest


def test_manifest_survives_a_write_cut_by_ulimit(tmp_path):
    # save_pretrained rewrote manifest.json in place: a full disk left a cut JSON and every model unloadable
    wdir = tmp_path / "weights"
    weightstore.save_pretrained(_tiny(0), "kept", {"note": "x" * 30_000}, weights_dir=wdir)  # a 30 kB manifest
    before = (wdir / "manifest.json").read_bytes()
    done = _run_limited(f"""
        import torch
        from nnimaging import models, weightstore
        torch.manual_seed(1)
        model = models.DnCNN(2, 1)  # its .pt (2 kB) fits under the limit; the new manifest does not
        LIMIT()
        weightstore.save_pretrained(model, "new", weights_dir={str(wdir)!r})
    """, limit=12_000)
    assert done.returncode != 0 and "File too large" in done.stderr, done.stderr[-2000:]
    assert (wdir / "manifest.json").read_bytes() == before
    assert weightstore.load_pretrained("kept", weights_dir=wdir).pretrained["training"]["note"] == "x" * 30_000
    _no_temp_files(wdir)


def test_install_weights_cut_by_ulimit_keeps_the_installed_weights(tmp_path):
    # install_weights copied .pt files over the shipped ones in place: a failed copy left a cut file
    target, export = tmp_path / "package", tmp_path / "export"
    weightstore.save_pretrained(_tiny(0), "m", weights_dir=target)  # 2 kB installed
    weightstore.save_pretrained(_tiny(1, 3, 64), "m", weights_dir=export)  # 156 kB to install over it
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    done = _run_limited(f"""
        from nnimaging import weightstore
        LIMIT()
        weightstore.install_weights({str(export)!r}, weights_dir={str(target)!r})
    """, limit=50_000)
    assert done.returncode != 0 and "File too large" in done.stderr, done.stderr[-2000:]
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert isinstance(weightstore.load_pretrained("m", weights_dir=target), models.DnCNN)


@pytest.mark.parametrize("bad", ["../outside.pt", "ABSOLUTE", "sub/../../outside.pt"])
def test_manifest_entries_outside_the_weights_folder_are_refused(tmp_path, bad):
    # an entry whose file is ../x.pt or absolute was loaded from, and installed to, outside the folder
    wdir = tmp_path / "weights"
    wdir.mkdir()
    outside = tmp_path / "outside.pt"
    torch.save(_tiny().state_dict(), outside)
    file = str(outside) if bad == "ABSOLUTE" else bad
    entry = {"name": "evil", "file": file, "architecture": "dncnn", "kwargs": {"depth": 2, "width": 1},
             "sha256": weightstore.sha256_file(outside)}
    (wdir / "manifest.json").write_text(json.dumps([entry]))
    with pytest.raises(ValueError, match=r"refused: .*relative path inside"):
        weightstore.load_pretrained("evil", weights_dir=wdir)
    # install: from a run folder whose manifest_entry.json points outside it
    run, target = tmp_path / "run", tmp_path / "target"
    run.mkdir()
    (run / "manifest_entry.json").write_text(json.dumps(entry))
    with pytest.raises(ValueError, match="refused"):
        weightstore.install_weights(run, weights_dir=target)
    assert not target.exists() or not any(target.iterdir())


def test_a_missing_manifest_is_named_as_missing(tmp_path):
    with pytest.raises(weightstore.WeightsNotFoundError, match=r"^manifest missing: .*has no manifest.json"):
        weightstore.load_pretrained("dncnn-s25", weights_dir=tmp_path)


# ------------------------------------------------------------------------------ results files


def test_a_partial_experiment_does_not_change_the_shipped_results(tmp_path, monkeypatch):
    # `denoise-table --datasets set12 --sigmas 25 --models dncnn-s25 --limit 1` overwrote the shipped
    # denoising.json, mixing 1-image and 12-image rows
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "denoising.json").write_text(json.dumps({"command": "the full table", "seed": 0, "rows": []}))
    monkeypatch.setattr(results, "RESULTS_DIR", shipped.resolve())
    wdir = tmp_path / "weights"
    weightstore.save_pretrained(_tiny(), "dncnn-s25", {"noise": {"sigma": 25.0}}, weights_dir=wdir)
    images = [np.full((16, 16), 0.5, np.float32)]
    monkeypatch.setattr(experiments, "_load_images", lambda dataset, limit=None: (images, ["01"]))
    monkeypatch.setattr(experiments, "best_gaussian_width", lambda sigma, images: (1.0, 0.0))
    monkeypatch.chdir(tmp_path)
    experiments.measure_denoisers(("dncnn-s25",), ("set12",), (25,), limit=1, weights_dir=wdir, progress=False)
    assert json.loads((shipped / "denoising.json").read_text())["command"] == "the full table"
    written = results.load("denoising", tmp_path / "runs" / "results")  # elsewhere, and said where
    assert written["limit"] == 1 and {r["method"] for r in written["rows"]} == {"noisy", "gaussian", "dncnn-s25"}
    with pytest.raises(ValueError, match="refused to write the shipped results file"):
        results.save("denoising", written)
    results.save("denoising", written, update_shipped=True)  # the explicit flag
    assert results.load("denoising")["limit"] == 1


def test_update_shipped_refuses_a_partial_run_before_any_work(monkeypatch, capsys):
    monkeypatch.setattr(experiments, "measure_denoisers", lambda *a, **k: pytest.fail("work started"))
    argv = ["denoise-table", "--datasets", "set12", "--sigmas", "25", "--models", "dncnn-s25", "--limit", "1",
            "--update-shipped"]
    with pytest.raises(SystemExit) as exit_info:
        _checks.run_cli(experiments.main, argv, prog="experiments")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--update-shipped needs the full table" in err and "--limit 1" in err


def test_experiments_say_where_they_wrote(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiments, "cpu_benchmark", lambda **kwargs: {"rows": [], **kwargs})
    record = experiments.main(["cpu-benchmark", "--no-bm3d"])
    assert record["update_shipped"] is False and record["results_dir"] is None
    assert "wrote runs/results/cpu_benchmark.json (not the shipped file" in capsys.readouterr().err


# ------------------------------------------------------------------------------ run outputs


def test_evaluate_out_cut_half_way_keeps_the_previous_results(tmp_path, monkeypatch):
    from PIL import Image

    data = tmp_path / "images"
    data.mkdir()
    Image.fromarray(np.full((8, 8), 120, np.uint8)).save(data / "a.png")
    out = tmp_path / "result.json"
    out.write_text('{"previous": true}\n')
    _disk_full_half_way(monkeypatch)
    with pytest.raises(OSError, match="No space"):
        evaluate.main(["noisy", "--data-dir", str(data), "--out", str(out), "--no-progress"])
    monkeypatch.undo()
    assert json.loads(out.read_text()) == {"previous": True}
    _no_temp_files(tmp_path)


def test_re_executed_notebook_cut_half_way_keeps_the_chapter(tmp_path, monkeypatch):
    import nbclient
    import nbformat

    from nnimaging import notebook

    path = tmp_path / "chapter.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")])
    nbformat.write(nb, str(path))
    before = path.read_bytes()
    monkeypatch.setattr(nbclient.NotebookClient, "execute", lambda self, **kwargs: self.nb)
    real = nbformat.write

    def cut(nb, fp, **kwargs):
        Path(fp).write_text(nbformat.writes(nb)[:50])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(nbformat, "write", cut)
    with pytest.raises(OSError, match="No space"):
        notebook.execute(path)
    monkeypatch.setattr(nbformat, "write", real)
    assert path.read_bytes() == before
    _no_temp_files(tmp_path)


@pytest.mark.parametrize("damage", ["empty", "truncated", "random", "foreign"])
def test_evaluate_on_a_damaged_checkpoint_names_the_file(tmp_path, damage):
    # evaluate RUN_DIR crashed with IndexError, EOFError or KeyError: 'config', naming no file
    run = tmp_path / "run"
    run.mkdir()
    path = run / "checkpoint.pt"
    good = {"model": _tiny().state_dict(), "config": {"architecture": "dncnn", "model_kwargs": {"depth": 2, "width": 1}},
            "step": 3}
    torch.save(good, path)
    payload = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(payload[: len(payload) // 2])
    elif damage == "random":
        path.write_bytes(np.random.default_rng(0).bytes(3000))
    else:
        torch.save({"model": good["model"]}, path)
    with pytest.raises(ValueError, match=f"{path}.*(empty|truncated|lacks)"):
        evaluate.load_model(str(run))


def test_one_checksum_helper_for_every_file_digest(tmp_path):
    import hashlib

    from nnimaging import _checks

    path = tmp_path / "blob"
    path.write_bytes(b"x" * (3 << 20) + b"tail")  # several read blocks
    assert _checks.file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest() == weightstore.sha256_file(path)
    assert _checks.file_digest(path, "sha512") == hashlib.sha512(path.read_bytes()).hexdigest()
