"""Facts about the chapter-5 helpers: tables, training log, figures and the noise-level demo."""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from nnimaging import data, denoising, models, weightstore
from nnimaging.degrade import add_gaussian_noise
from nnimaging.demo import MAX_FRAMES, build, registry
from nnimaging.evaluate import NoisyBaseline, denoise, psnr_8bit
from nnimaging.train import train


def _image(h=24, w=24, seed=0):
    """An 8-bit image scaled to [0, 1], like the test sets."""
    return (np.random.default_rng(seed).integers(0, 256, (h, w)) / 255).astype(np.float32)


def _tiny_dncnn(seed=0):
    """An untrained 3-layer DnCNN whose last layer is random (it starts at zero: the identity)."""
    torch.manual_seed(seed)
    model = models.DnCNN(depth=3, width=4).eval()
    torch.nn.init.normal_(model.layers[-1].weight, std=0.1)
    return model


# ------------------------------------------------------------------------------ tables
def _denoising_record():
    rows = []
    for dataset in ("set12", "bsd68"):
        for sigma in (15.0, 25.0, 50.0):
            base = {"set12": 100.0, "bsd68": 200.0}[dataset] + sigma
            rows.append({"method": "noisy", "dataset": dataset, "sigma": sigma, "mean_psnr": base + 0.001})
            rows.append({"method": "gaussian", "dataset": dataset, "sigma": sigma, "mean_psnr": base + 0.1,
                         "width": 1.0})
            rows.append({"method": "dncnn-b", "dataset": dataset, "sigma": sigma, "mean_psnr": base + 0.3})
        rows.append({"method": "dncnn-s25", "dataset": dataset, "sigma": 25.0,
                     "mean_psnr": {"set12": 30.444, "bsd68": 29.005}[dataset]})
    return {"command": "test", "rows": rows}


def test_denoising_table_puts_each_number_in_its_row_and_column():
    table = denoising.denoising_table(_denoising_record(), models=("dncnn-s25", "dncnn-b"))
    assert table.columns == ["Set12 σ=15", "Set12 σ=25", "Set12 σ=50", "BSD68 σ=15", "BSD68 σ=25", "BSD68 σ=50"]
    assert table.labels == ["noisy input", "Gaussian filter, best width", "BM3D (published)",
                            "DnCNN-S (published)", "DnCNN-B (published)", "DnCNN-S, ours (dncnn-s25)",
                            "DnCNN-B, ours (dncnn-b)"]
    assert table.cell("noisy input", "BSD68 σ=50") == "250.00"          # 200 + 50, rounded
    assert table.cell("Gaussian filter, best width", "Set12 σ=15") == "115.10"
    assert table.cell("DnCNN-B, ours (dncnn-b)", "BSD68 σ=15") == "215.30"
    assert table.cell("DnCNN-S, ours (dncnn-s25)", "Set12 σ=25") == "30.44"
    assert table.cell("DnCNN-S, ours (dncnn-s25)", "BSD68 σ=25") == "29.00"  # 29.005 in binary is below
    # a model trained at sigma 25 has no number elsewhere
    assert table.cell("DnCNN-S, ours (dncnn-s25)", "Set12 σ=15") == "–"


def test_denoising_table_shows_the_published_numbers_of_zhang_et_al():
    table = denoising.denoising_table(_denoising_record())
    expected = {("BM3D (published)", "BSD68 σ=15"): "31.07", ("BM3D (published)", "BSD68 σ=50"): "25.62",
                ("DnCNN-S (published)", "BSD68 σ=25"): "29.23", ("DnCNN-B (published)", "BSD68 σ=50"): "26.23",
                ("BM3D (published)", "Set12 σ=25"): "29.97", ("DnCNN-S (published)", "Set12 σ=25"): "30.44",
                ("DnCNN-B (published)", "Set12 σ=25"): "–", ("BM3D (published)", "Set12 σ=15"): "–"}
    for (row, column), cell in expected.items():
        assert table.cell(row, column) == cell, (row, column)
    assert "U-Net, ours (unet-denoise)" in table.labels           # listed even without rows
    assert table.cell("U-Net, ours (unet-denoise)", "BSD68 σ=25") == "–"
    assert "Zhang et al. (2017)" in table.caption


def test_table_html_and_text_hold_every_cell():
    table = denoising.Table(["a<b", "c"], [("row & 1", ["1.00", "–"]), ("row 2", ["3.00", "4.00"])],
                            caption="cap", row_header="method")
    page = table._repr_html_()
    assert page.count('<th scope="col"') == 3 and page.count('<th scope="row"') == 2
    assert "a&lt;b" in page and "row &amp; 1" in page and "<caption>cap</caption>" in page
    assert page.count("<td") == 4
    lines = repr(table).splitlines()
    assert lines[0] == "cap" and lines[1].split() == ["method", "a<b", "c"]
    assert lines[3].split() == ["row", "&", "1", "1.00", "–"]
    assert len({len(line) for line in lines[1:3]}) == 1        # header and rule have the same width
    with pytest.raises(ValueError, match="2 cells for 3 columns"):
        denoising.Table(["a", "b", "c"], [("x", ["1", "2"])])
    with pytest.raises(KeyError, match="no row"):
        table.cell("row 3", "c")
    with pytest.raises(KeyError, match="no column"):
        table.cell("row 2", "d")


def test_benchmark_table_formats_numbers_and_reports_a_skipped_bm3d():
    record = {"command": "x", "image": "set12/08", "sigma": 25.0, "hardware": "CPU",
              "rows": [{"method": "noisy", "psnr": 20.1749, "seconds": 0.0},
                       {"method": "dncnn-s25", "psnr": 30.126, "seconds": 2.0449, "parameters": 556032},
                       {"method": "bm3d", "skipped": "the bm3d package is not installed"}]}
    table = denoising.benchmark_table(record)
    assert table.cell("noisy input", "PSNR (dB)") == "20.17"
    assert table.cell("noisy input", "seconds") == "–"
    assert table.cell("DnCNN-S, ours (dncnn-s25)", "seconds") == "2.04"
    assert table.cell("DnCNN-S, ours (dncnn-s25)", "parameters") == "556,032"
    assert table.cell("BM3D (bm3d package)", "PSNR (dB)") == "not measured: the bm3d package is not installed"
    assert "set12/08" in table.caption and "σ=25" in table.caption
    with pytest.raises(ValueError, match="lacks the keys"):
        denoising.benchmark_table({"rows": []})


# ------------------------------------------------------------------------------ training log
def test_read_log_returns_the_losses_that_train_writes(tmp_path):
    images = [_image(32, 32, seed) for seed in range(3)]
    summary = train({"model_kwargs": {"depth": 2, "width": 4}, "batch_size": 4, "patch_size": 16, "max_steps": 7,
                     "log_every": 3, "warmup_steps": 0, "val": "none", "progress": False, "device": "cpu",
                     "out": str(tmp_path / "run"), "ckpt_every": 100}, images=images, val_images=[images[0]])
    log = denoising.read_log(summary["out"])
    assert log["step"].tolist() == [3, 6, 7]                   # every log_every steps and at the end
    assert log["loss"][-1] == pytest.approx(summary["final_loss"])
    assert log["val_psnr"] == pytest.approx(summary["val_psnr"])
    again = denoising.read_log(tmp_path / "run" / "log.jsonl")
    assert np.array_equal(again["loss"], log["loss"])


def test_read_log_skips_validation_records_and_reports_a_missing_log(tmp_path):
    lines = [{"step": 10, "loss": 0.5}, {"step": 10, "val_psnr": 21.0}, {"step": 20, "loss": 0.25},
             {"step": 20, "val_psnr": None, "final": True}]
    (tmp_path / "log.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    log = denoising.read_log(tmp_path)
    assert log["step"].tolist() == [10, 20] and log["loss"].tolist() == [0.5, 0.25]
    assert log["val_psnr"] == 21.0
    with pytest.raises(FileNotFoundError, match="no training log"):
        denoising.read_log(tmp_path / "missing")


# ------------------------------------------------------------------------------ figures
def test_plot_training_loss_draws_the_curve_and_the_loss_of_the_noisy_input():
    fig = denoising.plot_training_loss([10, 20, 30], [0.05, 0.01, 0.005], sigma=25)
    ax = fig.axes[0]
    curve, level = ax.lines
    assert curve.get_xdata().tolist() == [10, 20, 30]
    assert level.get_ydata()[0] == pytest.approx((25 / 255) ** 2)
    assert ax.get_yscale() == "log"
    plt.close(fig)
    with pytest.raises(ValueError, match="same length"):
        denoising.plot_training_loss([1, 2], [0.1])


def test_plot_denoised_titles_carry_psnr_8bit_and_noise_panels_the_differences():
    clean = _image()
    noisy = add_gaussian_noise(clean, 25, 0)
    out = np.clip(noisy, 0, 1) * 0.5 + clean * 0.5
    fig = denoising.plot_denoised(clean, noisy, {"model": out}, sigma=25)
    axes = np.array(fig.axes).reshape(2, 3)
    assert axes[0, 1].get_title() == f"noisy: {psnr_8bit(noisy, clean):.2f} dB"
    assert axes[0, 2].get_title() == f"model: {psnr_8bit(out, clean):.2f} dB"
    removed = axes[1, 2].images[0]
    assert np.allclose(removed.get_array(), noisy - out)
    assert removed.get_clim() == pytest.approx((-3 * 25 / 255, 3 * 25 / 255))
    assert np.allclose(axes[1, 1].images[0].get_array(), noisy - clean)
    plt.close(fig)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0 on the 0..255 scale"):
        denoising.plot_denoised(clean, noisy, {}, sigma=0)


def test_plot_sigma_sweep_draws_psnr_and_gain_per_model():
    record = {"command": "x", "sigmas": [5.0, 10.0], "noisy_psnr": [34.0, 28.0],
              "models": {"a": {"psnr": [38.0, 33.0]}, "b": {"psnr": [37.0, 34.0]}}}
    fig = denoising.plot_sigma_sweep(record)
    psnr_ax, gain_ax = fig.axes
    lines = [l for l in psnr_ax.lines if l.get_label() in ("noisy input", "a", "b")]
    assert [l.get_label() for l in lines] == ["noisy input", "a", "b"]
    gains = {l.get_label(): l.get_ydata().tolist() for l in gain_ax.lines if l.get_label() in ("a", "b")}
    assert gains == {"a": [4.0, 5.0], "b": [3.0, 6.0]}
    plt.close(fig)


# ------------------------------------------------------------------------------ the demo
def test_noise_level_frame_of_an_untrained_model_removes_noisy_minus_denoised():
    clean = _image(20, 28)
    model = _tiny_dncnn()
    frame = denoising.noise_level_frame(model, clean, sigma=15, seed=3)
    noisy = add_gaussian_noise(clean, 15, 3)
    output = denoise(model, noisy)
    assert np.abs(noisy - output).max() > 1e-3                  # the model does change the image
    assert np.array_equal(frame["noisy"], noisy)
    assert np.array_equal(frame["denoised"], np.clip(output, 0, 1))
    np.testing.assert_allclose(frame["removed"] * 15 / 255, noisy.astype(np.float64) - output, atol=1e-12)
    with torch.no_grad():
        noise = model.estimate_noise(torch.from_numpy(noisy)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(frame["removed"] * 15 / 255, noise, atol=1e-5)  # DnCNN's own noise estimate
    assert frame["noisy_psnr"] == psnr_8bit(noisy, clean)
    assert frame["denoised_psnr"] == psnr_8bit(output, clean)
    assert frame["gain"] == frame["denoised_psnr"] - frame["noisy_psnr"]
    assert frame["removed_std"] == pytest.approx(frame["removed"].std())
    assert {k: np.shape(v) for k, v in frame.items() if np.ndim(v)} == {
        "noisy": (20, 28), "denoised": (20, 28), "removed": (20, 28)}


def test_noise_level_frame_of_the_identity_removes_nothing_and_gains_nothing():
    frame = denoising.noise_level_frame(NoisyBaseline(), _image(), sigma=25)
    assert np.all(frame["removed"] == 0) and frame["gain"] == 0 and frame["removed_std"] == 0
    with pytest.raises(ValueError, match="sigma must be a finite number > 0 on the 0..255 scale"):
        denoising.noise_level_frame(NoisyBaseline(), _image(), sigma=0)
    with pytest.raises(ValueError, match=r"clean must be an \(H, W\) array"):
        denoising.noise_level_frame(NoisyBaseline(), np.zeros((2, 8, 8), np.float32), sigma=5)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Tiny stand-ins for the shipped denoisers and a synthetic Set12, in tmp_path."""
    for i, name in enumerate(denoising.DEMO_MODELS):
        weightstore.save_pretrained(_tiny_dncnn(seed=i), name, {"noise": {"sigma": 25.0}}, weights_dir=tmp_path)
    fake = [_image(256, 256, seed) for seed in range(2)]
    monkeypatch.setattr(data, "load_images", lambda name, return_names=False: (fake, ["01", "02"]))
    return tmp_path, fake


def test_the_demo_crop_is_data_crop_of_the_named_image(shipped):
    _, fake = shipped
    assert np.array_equal(data.crop("set12/02", top=10, left=20, size=30), fake[1][10:40, 20:50])


def test_noise_level_demo_precomputes_every_frame_with_noise_level_frame(shipped):
    weights_dir, fake = shipped
    assert registry["denoising.noise_level"] is denoising.noise_level_demo
    demo = denoising.noise_level_demo(weights_dir=str(weights_dir))
    assert demo.args == {"weights_dir": str(weights_dir)}   # recorded as called
    assert demo.js is None and demo.n_combinations == 12 <= MAX_FRAMES      # 6 noise levels x 2 models
    first, last, step = denoising.DEMO_SIGMAS
    assert demo.controls[0].positions == list(range(first, last + 1, step))
    assert demo.controls[1].positions == list(denoising.DEMO_MODELS)
    clean = data.crop(**denoising.DEMO_IMAGE)
    model = weightstore.load_pretrained("dncnn-b", weights_dir=weights_dir)
    frame = demo(sigma=35, model="dncnn-b")
    expected = denoising.noise_level_frame(model, clean, 35)
    for key in ("noisy", "denoised", "removed"):
        assert frame[key].shape == (96, 96)
        assert np.array_equal(frame[key], expected[key])
    assert frame["denoised_psnr"] == expected["denoised_psnr"]
    spec = demo.spec()
    assert len(spec["frames"]) == 12
    assert all(f["noisy"].startswith("data:image/png;base64,") for f in spec["frames"])
    json.dumps(spec, allow_nan=False)
    rebuilt = build("denoising.noise_level", demo.args)      # what the browser tests do
    assert rebuilt(sigma=5, model="dncnn-s25")["noisy_psnr"] == demo(sigma=5, model="dncnn-s25")["noisy_psnr"]


def test_plot_training_curve_draws_psnr_against_minutes_and_the_reference_lines():
    record = {"dataset": "bsd68", "rows": [{"step": 100, "minutes": 8.0, "psnr": {"25": 27.5}},
                                           {"step": 300, "minutes": 16.0, "psnr": {"25": 28.4}}]}
    fig = denoising.plot_training_curve(record, 25, {"BM3D (published)": 28.57, "DnCNN-S": 29.23})
    ax = fig.axes[0]
    curve, bm3d, dncnn = ax.lines
    assert list(curve.get_xdata()) == [8.0, 16.0] and list(curve.get_ydata()) == [27.5, 28.4]
    assert list(bm3d.get_ydata()) == [28.57, 28.57] and list(dncnn.get_ydata()) == [29.23, 29.23]
    assert [t.get_text() for t in ax.get_legend().get_texts()][1] == "BM3D (published): 28.57 dB"
    assert "BSD68" in ax.get_ylabel()
    plt.close(fig)
    with pytest.raises(ValueError, match="no rows at sigma 50"):
        denoising.plot_training_curve(record, 50)
    with pytest.raises(ValueError, match="lacks the keys"):
        denoising.plot_training_curve({"rows": []})
    staged = {"dataset": "bsd68", "rows": [dict(r, run=0) for r in record["rows"]]
              + [{"run": 1, "step": 200, "minutes": 24.0, "psnr": {"25": 28.6}}]}
    fig = denoising.plot_training_curve(staged, 25)
    curve, restart = fig.axes[0].lines
    assert list(restart.get_xdata()) == [16.0, 16.0], "a dotted line where the second run starts"
    assert restart.get_label() == "next run starts (--init)"
    plt.close(fig)
