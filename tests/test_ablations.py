"""The ablation studies: equal training for both arms of each pair, reused runs, honest tables."""

import os

import pytest

from nnimaging import ablations, models

needs_data = pytest.mark.skipif(not os.environ.get("NNIMAGING_DATA"), reason="NNIMAGING_DATA is not set (real images)")


def test_each_pair_differs_in_the_choice_it_studies_only():
    studied = {"residual": {"residual"}, "batch_norm": {"batch_norm", "bias"}, "bias": {"bias"}, "skips": {"skips"}}
    for name, study in ablations.STUDIES.items():
        for a, b in study["pairs"]:
            arm_a, arm_b = study["arms"][a], study["arms"][b]
            differ = {k for k in set(arm_a) | set(arm_b) if arm_a.get(k) != arm_b.get(k)}
            assert differ <= studied[name] and differ, (name, a, b, differ)
            for arm in (arm_a, arm_b):  # every arm builds
                models.build_model(arm["architecture"], **{k: v for k, v in arm.items() if k != "architecture"})


def test_the_encoder_decoder_is_the_unet_without_its_concatenations():
    import torch

    unet, plain = models.UNet(2, 4), models.UNet(2, 4, skips=False)
    assert plain.config["kwargs"]["skips"] is False and "skips" not in unet.config["kwargs"]
    # each decoder block's first convolution reads half as many maps: 9 * w_level * w_level weights fewer
    assert models.count_parameters(unet) - models.count_parameters(plain) == 9 * (8 * 8 + 4 * 4)
    x = torch.rand(1, 1, 12, 12)
    assert plain(x).shape == x.shape
    # the plain decoder's blocks read only the upsampled maps (8 and 4), the U-Net's twice as many
    assert [block[0].in_channels for block in unet.decoder] == [16, 8]
    assert all(block[0].in_channels == up_ch for block, up_ch in zip(plain.decoder, (8, 4)))


def test_run_dirs_are_shared_by_identical_trainings_only():
    common = dict(ablations.COMMON)
    res, bn = ablations.STUDIES["residual"], ablations.STUDIES["batch_norm"]
    same = [ablations._run_dir("r", s, s["arms"][a], 0, common) for s, a in ((res, "residual"), (bn, "batch norm"))]
    assert same[0] == same[1], "the DnCNN baseline of two studies is trained once"
    assert ablations._run_dir("r", res, res["arms"]["residual"], 1, common) != same[0]
    assert ablations._run_dir("r", res, res["arms"]["direct"], 0, common) != same[0]
    assert ablations._run_dir("r", res, res["arms"]["residual"], 0, {**common, "steps": 3}) != same[0]


def _record(psnr_a, psnr_b):
    """A record of the residual study with the given per-seed PSNRs of its two arms."""
    def runs(values):
        return [{"seed": i, "steps": 10, "seconds": 1.0, "parameters": 100, "psnr": {"25": v},
                 "noisy_psnr": {"25": 20.17}} for i, v in enumerate(values)]

    study = ablations.STUDIES["residual"]
    return {"command": "x", "dataset": "set12", "settings": {"steps": 10},
            "studies": {"residual": {"question": study["question"], "train_sigma": 25.0, "test_sigmas": [25.0],
                                     "pairs": [["residual", "direct"]],
                                     "arms": {"residual": {"runs": runs(psnr_a)}, "direct": {"runs": runs(psnr_b)}}}}}


def test_differences_and_table_average_over_seeds_and_show_the_spread():
    record = _record([29.0, 29.2, 29.4], [28.9, 29.0, 29.1])
    (d,) = ablations.differences(record, "residual")
    assert d["difference"] == pytest.approx(29.2 - 29.0) and d["seeds"] == 3 and d["trained"]
    assert d["a_spread"] == pytest.approx(0.4) and d["b_spread"] == pytest.approx(0.2)
    table = ablations.table(record, "residual")
    assert table.labels == ["noisy input", "residual", "direct"]
    assert table.cell("residual", "σ=25") == "29.20 ± 0.20" and table.cell("direct", "seeds") == "3"
    assert table.cell("noisy input", "σ=25") == "20.17" and "10 steps" in table.caption
    single = ablations.table(_record([29.0], [27.0]), "residual")
    assert single.cell("direct", "σ=25") == "27.00", "one seed: no spread shown"
    with pytest.raises(ValueError, match="no study 'skips'.*experiments ablations"):
        ablations.table(record, "skips")


def test_close_pairs_get_more_seeds(monkeypatch):
    study = ablations.STUDIES["residual"]
    far = {"residual": [{"psnr": {"25": 29.0}}], "direct": [{"psnr": {"25": 28.0}}]}
    near = {"residual": [{"psnr": {"25": 29.0}}], "direct": [{"psnr": {"25": 28.8}}]}
    assert not ablations._close(study, far) and ablations._close(study, near)


@needs_data
def test_run_trains_each_distinct_arm_once_with_equal_steps(tmp_path, monkeypatch):
    small = {"residual": {**ablations.STUDIES["residual"],
                          "arms": {"residual": {"architecture": "dncnn", "depth": 3, "width": 4},
                                   "direct": {"architecture": "dncnn", "depth": 3, "width": 4, "residual": False}}},
             "skips": {**ablations.STUDIES["skips"],
                       "arms": {"U-Net (skips)": {"architecture": "unet", "depth": 1, "width": 4},
                                "encoder-decoder (no skips)": {"architecture": "unet", "depth": 1, "width": 4,
                                                               "skips": False}}}}
    monkeypatch.setattr(ablations, "STUDIES", small)
    monkeypatch.setattr(ablations, "CLOSE_DB", 100.0)  # every pair "close": three seeds each
    monkeypatch.setitem(ablations.COMMON, "patch_size", 16)
    monkeypatch.setitem(ablations.COMMON, "batch_size", 2)
    runs = tmp_path / "runs"
    record = ablations.run(steps=2, limit=1, runs_dir=runs, results_dir=tmp_path, progress=False)
    for study in record["studies"].values():
        for arm in study["arms"].values():
            assert [r["seed"] for r in arm["runs"]] == [0, 1, 2]
            assert {r["steps"] for r in arm["runs"]} == {2}
    assert len(list(runs.iterdir())) == 12
    stamps = {p: (p / "checkpoint.pt").stat().st_mtime_ns for p in runs.iterdir()}
    again = ablations.run(steps=2, limit=1, runs_dir=runs, results_dir=tmp_path, progress=False)
    assert {p: (p / "checkpoint.pt").stat().st_mtime_ns for p in runs.iterdir()} == stamps, "finished runs reused"
    assert again["studies"] == record["studies"]
    with pytest.raises(ValueError, match="unknown ablation studies"):
        ablations.run(["nope"], runs_dir=runs, results_dir=tmp_path)
