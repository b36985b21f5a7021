"""Inputs checked at the door: images outside [0, 1], NaN or inf, bad counts and paths, one-line user errors.

Each test is the failure it prevents: before, these inputs reached the models or the disk silently
(a mean PSNR of inf, a NaN image, an evaluation thrown away at the end for an unwritable --out).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nnimaging import _checks, evaluate, experiments, models, weightstore
from nnimaging import __main__ as cli


@pytest.fixture
def image_dir(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((16, 16), 60 + 50 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def test_evaluation_refuses_images_in_0_255():
    # evaluate_denoiser on 0..255 floats reported a mean PSNR of inf
    images = [np.full((16, 16), 128.0, np.float32)]
    with pytest.raises(ValueError, match=r"image '0': expected values in \[0, 1\] \(8-bit values must be divided "
                                         r"by 255\), got values in \[128, 128\]"):
        evaluate.evaluate_denoiser(evaluate.NoisyBaseline(), images, 25)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_evaluation_refuses_nan_or_inf_before_any_image_is_evaluated(monkeypatch, bad):
    images = [np.full((16, 16), 0.5, np.float32) for _ in range(3)]
    images[2][3, 4] = bad
    monkeypatch.setattr(evaluate, "denoise", lambda *a: pytest.fail("an image was evaluated"))
    with pytest.raises(ValueError, match="image '2': expected finite values, got 1 NaN or infinite value"):
        evaluate.evaluate_denoiser(evaluate.NoisyBaseline(), images, 25)


@pytest.mark.parametrize("model", [models.UNet(depth=1, width=4), models.DnCNN(3, 4)], ids=["unet", "dncnn"])
def test_one_nan_pixel_is_refused_before_the_network(model, monkeypatch):
    # one NaN pixel turned a whole U-Net output NaN
    x = torch.full((1, 1, 16, 16), 0.5)
    x[0, 0, 5, 5] = float("nan")
    monkeypatch.setattr(model, "body_forward", lambda x: pytest.fail("the network ran"))
    with pytest.raises(ValueError, match="input images: expected finite values, got 1 NaN"):
        model.eval()(x)
    with pytest.raises(ValueError, match="expected finite values"):
        evaluate.denoise(model, x[0, 0].numpy())


@pytest.mark.parametrize("flags, expected", [
    (["--limit", "-1"], "--limit must be an integer >= 1, got -1"),
    (["--limit", "0"], "--limit must be an integer >= 1, got 0"),
    (["--sigma", "-5"], "--sigma must be a finite number >= 0, got -5.0"),
    (["--out", "OUT_IS_A_FOLDER"], "is a folder; expected a file path"),
    (["--out", "OUT_UNDER_A_FILE"], "is a file, expected a folder"),
    (["--data-dir", "/nonexistent/images"], "--data-dir /nonexistent/images: no such folder"),
])  # fmt: skip
def test_evaluate_checks_counts_and_paths_before_evaluating(image_dir, tmp_path, monkeypatch, capsys, flags, expected):
    # `evaluate --out DIR` failed only after the evaluation
    monkeypatch.setattr(evaluate, "evaluate_denoiser", lambda *a, **k: pytest.fail("evaluation started"))
    (tmp_path / "a-file").write_text("x")
    flags = [{"OUT_IS_A_FOLDER": str(tmp_path), "OUT_UNDER_A_FILE": str(tmp_path / "a-file" / "r.json")}.get(f, f)
             for f in flags]
    argv = ["noisy", "--data-dir", str(image_dir), "--no-progress", *flags]
    with pytest.raises(SystemExit) as info:
        _checks.run_cli(evaluate.main, argv, prog="evaluate")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("evaluate: error: ") and expected in err, err


@pytest.mark.parametrize("argv, expected", [
    (["denoise-table", "--limit", "-1"], "--limit must be an integer >= 1, got -1"),
    (["ablations", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["deep-image-prior", "--steps", "0"], "--steps must be an integer >= 1, got 0"),
    (["cpu-benchmark", "--repeats", "0"], "--repeats must be an integer >= 1, got 0"),
    (["denoise-table", "--sigmas", "-25"], "--sigmas must be a finite number >= 0, got -25.0"),
])  # fmt: skip
def test_experiments_check_counts_before_any_work(monkeypatch, capsys, tmp_path, argv, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(experiments, "_run", lambda *a: pytest.fail("work started"))
    with pytest.raises(SystemExit) as info:
        _checks.run_cli(experiments.main, argv, prog="experiments")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err


def test_execute_checks_every_notebook_path_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "execute", lambda *a, **k: pytest.fail("a chapter ran"))
    good = tmp_path / "a.ipynb"
    good.write_text("{}")
    with pytest.raises(SystemExit) as info:
        _checks.run_cli(cli.main, ["execute", str(good), str(tmp_path / "missing.ipynb")], prog="python -m nnimaging")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == f"python -m nnimaging: error: expected an existing .ipynb file, got '{tmp_path / 'missing.ipynb'}'\n"


def test_a_bug_keeps_its_traceback():
    def buggy(argv):
        return [][1]

    with pytest.raises(IndexError):
        _checks.run_cli(buggy, [])


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "4", None, float("nan"), float("inf")])
def test_positive_int_says_what_it_expected_and_got(value):
    with pytest.raises(_checks.UsageError, match=rf"count must be an integer >= 1, got {value!r}".replace("(", r"\(")):
        _checks.positive_int("count", value)


@pytest.mark.parametrize("relpath", ["../x.pt", "/etc/passwd", "a/../../x.pt", "", "C:\\x.pt", "a\\..\\x.pt"])
def test_inside_refuses_paths_that_leave_their_folder(tmp_path, relpath):
    with pytest.raises(_checks.UsageError):
        _checks.inside(tmp_path, relpath)
    assert _checks.inside(tmp_path, "sub/x.pt") == tmp_path / "sub" / "x.pt"


def test_inside_refuses_a_symbolic_link_out_of_the_folder(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "link.pt").symlink_to(tmp_path / "elsewhere.pt")
    with pytest.raises(_checks.UsageError, match="resolves outside"):
        _checks.inside(tmp_path / "w", "link.pt")


def test_an_unknown_model_name_is_one_line_with_the_command_that_makes_it(tmp_path, capsys):
    weightstore.save_pretrained(models.DnCNN(2, 1), "tiny", weights_dir=tmp_path)
    with pytest.raises(SystemExit) as info:
        _checks.run_cli(evaluate.main, ["dncnn-s25", "--weights-dir", str(tmp_path)], prog="evaluate")
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no pretrained weights named 'dncnn-s25'" in err
    assert err.rstrip().endswith("--export dncnn-s25"), err


@pytest.mark.parametrize("model", [models.UNet(depth=1, width=4), models.DnCNN(3, 4)], ids=["unet", "dncnn"])
def test_the_input_check_of_a_model_warns_about_nothing_on_tensors_that_need_grad(model):
    # a receptive-field measurement differentiates with respect to the input: the check must not
    # turn into a "converting a tensor with requires_grad=True to a scalar" warning in a chapter
    import warnings

    x = torch.full((1, 1, 16, 16), 0.5, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.eval()(x).sum().backward()
    assert x.grad is not None


def test_number_checks_name_the_unit_and_raise_a_type_error_for_a_wrong_type():
    with pytest.raises(_checks.UsageError, match=r"^sigma must be a finite number >= 0 on the 0..255 scale, got -1$"):
        _checks.non_negative_number("sigma", -1, " on the 0..255 scale")
    with pytest.raises(TypeError, match=r"sigma must be a finite number > 0, got '25'"):
        _checks.positive_number("sigma", "25")
    with pytest.raises(ValueError, match=r"sigma must be a finite number > 0, got 0"):
        _checks.positive_number("sigma", 0)
    # a 0-d array or tensor counts as its number (a noise level drawn as a tensor)
    assert _checks.non_negative_number("sigma", torch.tensor(25.0)) == 25.0
    assert _checks.positive_int("n", np.array(3)) == 3
    with pytest.raises(TypeError, match=r"n must be an integer >= 1"):
        _checks.positive_int("n", [3])


def test_float_image_keeps_its_dtype_only_when_asked():
    image = np.zeros((4, 4), np.float32)
    assert _checks.float_image("image", image).dtype == np.float64
    assert _checks.float_image("image", image, keep_dtype=True) is image
    with pytest.raises(TypeError, match="image must be a float array"):
        _checks.float_image("image", np.zeros((4, 4), np.uint8))
    with pytest.raises(_checks.UsageError, match=r"image: expected finite values"):
        _checks.float_image("image", np.full((4, 4), np.nan))
