"""Facts about chapter 4's step-through demos and grid figures: they show PyTorch's numbers."""

import itertools
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnimaging import conv, convfigures
from nnimaging.demo import MAX_FRAMES


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


# ------------------------------------------------------------------ step-throughs and demos
def test_conv_step_fills_cells_in_raster_order_with_torch_values():
    x, k = np.array(convfigures.CONV_DEMO_INPUT, float), np.array(convfigures.CONV_DEMO_KERNEL, float)
    for p, s in itertools.product((0, 1, 2), (1, 2, 3)):
        ref = F.conv2d(_t(x)[None, None], _t(k)[None, None], stride=s, padding=p)[0, 0].numpy()
        for step in range(1, ref.size + 2):
            r = convfigures.conv_step(x, k, s, p, step)
            n = min(step, ref.size)
            filled = ~np.isnan(r["output"])
            assert filled.sum() == n and filled.ravel()[:n].all()
            np.testing.assert_allclose(r["output"][filled], ref[filled])
            assert r["current"].sum() == 1 and r["output"][r["current"]][0] == r["value"]
            assert r["window"].sum() == k.size
            padded = np.nan_to_num(r["input"])           # the padding is NaN (drawn blank)
            assert r["products"].sum() == r["value"] == padded[r["window"]] @ k.ravel()
            assert r["input"].shape == (6 + 2 * p,) * 2 and np.isnan(r["input"]).sum() == (
                (6 + 2 * p) ** 2 - 36)


def test_pool_step_matches_torch_pooling_and_weights_sum_to_one():
    x = np.array(convfigures.POOL_DEMO_INPUT, float)
    for kind, w, s in itertools.product(conv.POOL_KINDS, (2, 3), (1, 2)):
        full = conv.pool2d(x, w, s, kind)
        if kind == "max":
            torch.testing.assert_close(_t(full), F.max_pool2d(_t(x)[None], w, s)[0])
        for step in (1, 3, full.size):
            r = convfigures.pool_step(x, kind, w, s, step)
            filled = ~np.isnan(r["output"])
            assert filled.sum() == step
            np.testing.assert_allclose(r["output"][filled], full[filled])
            assert r["weights"].sum() == pytest.approx(1.0)
            assert r["value"] == pytest.approx(float(r["input"][r["window"]] @
                                                     r["weights"].ravel()))


def test_conv_transpose_step_accumulates_stamps_and_ends_at_torch_result():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    for k, s in itertools.product((2, 3), (1, 2)):
        kernel = np.ones((k, k))
        ref = F.conv_transpose2d(_t(x)[None, None], _t(kernel)[None, None], stride=s)[0, 0]
        assert np.isnan(convfigures.conv_transpose_step(x, kernel, s, 0)["output"]).all()
        for step in range(1, 5):
            r = convfigures.conv_transpose_step(x, kernel, s, step)
            partial = conv.conv_transpose2d(np.where(np.arange(4).reshape(2, 2) < step, x, 0),
                                            kernel, stride=s)
            reached = ~np.isnan(r["output"])
            np.testing.assert_allclose(r["output"][reached], partial[reached])
            assert (partial[~reached] == 0).all() and r["target"].sum() == k * k
        torch.testing.assert_close(_t(r["output"]), ref)


def test_convolution_demo_frames_equal_torch_conv_for_every_control_position():
    demo = convfigures.convolution_demo()
    x, k = _t(convfigures.CONV_DEMO_INPUT)[None, None], _t(convfigures.CONV_DEMO_KERNEL)[None, None]
    for p, s in itertools.product((0, 1), (1, 2)):
        ref = F.conv2d(x, k, stride=s, padding=p)[0, 0].numpy()
        for cell in range(1, 37):
            out = demo(padding=p, stride=s, cell=cell)["output"]
            filled = ~np.isnan(out)
            assert filled.sum() == min(cell, ref.size)
            np.testing.assert_array_equal(out[filled], ref[filled])
    assert demo.n_combinations <= MAX_FRAMES and demo.js is None


def test_all_demos_build_a_json_spec_within_the_frame_limit():
    for factory in (convfigures.convolution_demo, convfigures.pooling_demo, convfigures.transposed_convolution_demo,
                    convfigures.overlap_demo):
        demo = factory()
        assert demo.n_combinations <= MAX_FRAMES
        spec = demo.spec()
        assert len(spec["frames"]) == demo.n_combinations
        json.dumps(spec, allow_nan=False)


def test_pooling_and_transposed_demos_return_torch_numbers():
    pool = convfigures.pooling_demo()
    out = pool(kind="max", window=2, stride=2, cell=9)["output"]
    torch.testing.assert_close(_t(out), F.max_pool2d(_t(convfigures.POOL_DEMO_INPUT)[None], 2, 2)[0])
    tr = convfigures.transposed_convolution_demo()
    out = tr(kernel=3, stride=2, step=4)["output"]
    ref = F.conv_transpose2d(_t(convfigures.TRANSPOSED_DEMO_INPUT)[None, None], torch.ones(
        1, 1, 3, 3, dtype=torch.float64), stride=2)[0, 0]
    torch.testing.assert_close(_t(out), ref)


def test_overlap_demo_verdicts():
    demo = convfigures.overlap_demo()
    assert demo(kernel=3, stride=2)["verdict"].startswith("uneven")
    assert demo(kernel=4, stride=2)["verdict"].startswith("even")
    assert demo(kernel=1, stride=2)["verdict"].startswith("gaps")
    r = demo(kernel=3, stride=2)
    assert (r["lo"], r["hi"]) == (1.0, 2.0) and r["image"].max() == 1.0


# ------------------------------------------------------------------ figures
def test_plot_matrices_writes_every_finite_value_and_skips_nan():
    import matplotlib.pyplot as plt

    m = np.array([[1.0, np.nan], [3.0, 4.0]])
    fig = convfigures.plot_matrices([m, np.ones((1, 3))], ["a", "b"])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sorted(texts) == ["1", "1", "1", "1", "3", "4"]
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    plt.close(fig)


def test_other_figures_draw_one_panel_per_item():
    import matplotlib.pyplot as plt

    figs = [
        (convfigures.plot_parameter_counts([32, 64], [10, 100], [84, 84]), 1),
        (convfigures.plot_conv_matrix(conv.conv_matrix(np.ones((3, 3)), (4, 4)), (4, 4), (2, 2)), 1),
        (convfigures.plot_translation_stability([0, 1], {"a": np.zeros((2, 3)), "b": np.ones((2, 2))}),
         2),
        (convfigures.plot_receptive_field(np.pad(np.ones((3, 3)), 2), (3, 3), 3), 2),  # + colorbar
        (convfigures.plot_images([np.zeros((4, 4))] * 3, ["a", "b", "c"], ncols=2), 4),
        (convfigures.plot_layer_parameters(["conv1", "fc1"], [10, 1000]), 1),
    ]
    for fig, n_axes in figs:
        assert len(fig.axes) == n_axes
        plt.close(fig)
    fig = convfigures.plot_conv_matrix(conv.conv_matrix(np.arange(1.0, 10.0).reshape(3, 3), (4, 4)),
                                (4, 4), (2, 2))
    assert len(fig.axes[0].texts) == 4 * 9  # the non-zero entries: 9 per output pixel
    plt.close(fig)


def test_demo_highlight_masks_have_the_shape_of_their_grids():
    from nnimaging.demo import Grid

    for demo in (convfigures.convolution_demo(), convfigures.pooling_demo(), convfigures.transposed_convolution_demo()):
        for combo in itertools.product(*(c.positions for c in demo.controls)):
            result = demo(**dict(zip([c.name for c in demo.controls], combo)))
            for panel in demo.panels:
                for mark in panel.marks:
                    if isinstance(mark, Grid) and mark.highlight:
                        mask = np.asarray(result[mark.highlight])
                        assert mask.dtype == bool and mask.shape == np.shape(result[mark.key])
