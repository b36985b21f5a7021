"""Facts about the chapter-4 convolution helpers, checked against PyTorch and closed forms."""

import itertools
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnimaging import conv
from nnimaging.demo import MAX_FRAMES


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------ sizes and counts
def test_conv_output_size_matches_nn_conv2d_over_a_grid_of_settings():
    for n, k, s, p, d in itertools.product((5, 6, 7, 10), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2),
                                           (1, 2)):
        if d * (k - 1) + 1 > n + 2 * p:
            with pytest.raises(ValueError, match="kernel spans"):
                conv.conv_output_size(n, k, s, p, d)
            continue
        layer = nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d, device="meta")
        out = layer(torch.empty(1, 1, n, n, device="meta"))
        assert conv.conv_output_size(n, k, s, p, d) == out.shape[-1], (n, k, s, p, d)
        if d == 1:  # the textbook formula: floor((n - k + 2p) / s) + 1
            assert conv.conv_output_size(n, k, s, p) == (n - k + 2 * p) // s + 1


def test_conv_output_size_also_gives_the_pooling_output_size():
    for n, k, s in itertools.product((6, 7, 9), (2, 3), (1, 2, 3)):
        out = nn.MaxPool2d(k, s)(torch.zeros(1, 1, n, n))
        assert conv.conv_output_size(n, k, s) == out.shape[-1]


def test_conv_transpose_output_size_matches_nn_conv_transpose2d():
    for n, k, s, p in itertools.product((1, 2, 4, 5), (1, 2, 3, 4), (1, 2, 3), (0, 1)):
        for op in range(s):
            expected_size = (n - 1) * s - 2 * p + k + op
            if expected_size < 1:
                with pytest.raises(ValueError):
                    conv.conv_transpose_output_size(n, k, s, p, op)
                continue
            layer = nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op)
            out = layer(torch.zeros(1, 1, n, n))
            assert conv.conv_transpose_output_size(n, k, s, p, op) == out.shape[-1]


def test_output_size_errors_name_the_bad_argument():
    with pytest.raises(ValueError, match="stride"):
        conv.conv_output_size(5, 3, stride=0)
    with pytest.raises(ValueError, match="padding"):
        conv.conv_output_size(5, 3, padding=-1)
    with pytest.raises(ValueError, match="output_padding"):
        conv.conv_transpose_output_size(3, 3, stride=2, output_padding=2)


def test_parameter_counts_equal_torch_numel():
    # A fully connected layer from a 256x256x3 image to an image of the same size: on the
    # meta device torch counts its parameters without allocating 155 GB.
    n = 256 * 256 * 3
    fc = nn.Linear(n, n, device="meta")
    assert conv.dense_parameter_count(n, n) == sum(p.numel() for p in fc.parameters())
    assert conv.dense_parameter_count(n, n) == n * n + n
    for c_in, c_out, k, bias in itertools.product((1, 3), (2, 64), (1, 3, (3, 5)), (True, False)):
        layer = nn.Conv2d(c_in, c_out, k, bias=bias, device="meta")
        assert conv.conv_parameter_count(c_in, c_out, k, bias) == sum(
            p.numel() for p in layer.parameters())


# ------------------------------------------------------------------ convolution
def test_conv2d_equals_torch_conv2d_over_a_grid_of_settings(rng):
    x = rng.normal(size=(3, 9, 8))
    for (kh, kw), s, p, d, c_out in itertools.product(((3, 3), (3, 2), (1, 1)), (1, 2, 3),
                                                      (0, 1, 2), (1, 2), (1, 4)):
        w, b = rng.normal(size=(c_out, 3, kh, kw)), rng.normal(size=c_out)
        ours = conv.conv2d(x, w, b, stride=s, padding=p, dilation=d)
        ref = F.conv2d(_t(x)[None], _t(w), _t(b), stride=s, padding=p, dilation=d)[0]
        torch.testing.assert_close(_t(ours), ref)


def test_conv2d_is_cross_correlation_so_an_impulse_returns_the_flipped_kernel():
    kernel = np.arange(1.0, 10.0).reshape(3, 3)
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 1.0
    out = conv.conv2d(impulse, kernel, padding=1)
    np.testing.assert_array_equal(out[1:4, 1:4], kernel[::-1, ::-1])
    # ... and the same as torch, which also does not flip
    ref = F.conv2d(_t(impulse)[None, None], _t(kernel)[None, None], padding=1)[0, 0]
    torch.testing.assert_close(_t(out), ref)


def test_each_output_channel_sums_over_all_input_channels(rng):
    x, w = rng.normal(size=(3, 6, 6)), rng.normal(size=(2, 3, 3, 3))
    out = conv.conv2d(x, w)
    for o in range(2):
        per_channel = sum(conv.conv2d(x[c], w[o, c]) for c in range(3))
        np.testing.assert_allclose(out[o], per_channel)


def test_one_by_one_convolution_is_a_matrix_product_at_every_pixel(rng):
    x, w = rng.normal(size=(8, 5, 4)), rng.normal(size=(3, 8, 1, 1))
    np.testing.assert_allclose(conv.conv2d(x, w), np.einsum("oc,chw->ohw", w[:, :, 0, 0], x))


def test_conv2d_rejects_mismatched_channels():
    with pytest.raises(ValueError, match="input channels"):
        conv.conv2d(np.zeros((3, 5, 5)), np.zeros((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="2-D"):
        conv.conv2d(np.zeros((5, 5, 5, 5)), np.zeros((3, 3)))


def test_conv_matrix_applies_the_convolution_and_its_transpose_the_transposed_one(rng):
    kernel = rng.normal(size=(3, 3))
    for shape, s, p in [((5, 5), 1, 0), ((6, 5), 2, 1), ((4, 4), 1, 1)]:
        m = conv.conv_matrix(kernel, shape, stride=s, padding=p)
        x = rng.normal(size=shape)
        y = conv.conv2d(x, kernel, stride=s, padding=p)
        np.testing.assert_allclose(m @ x.ravel(), y.ravel())
        # the adjoint: <M x, y> = <x, M^T y>, and M^T y is a transposed convolution
        # (output_padding restores the rows a strided convolution dropped)
        op = [(n + 2 * p - 3) % s for n in shape]
        back = conv.conv_transpose2d(y, kernel, stride=s, padding=p, output_padding=tuple(op))
        np.testing.assert_allclose((m.T @ y.ravel()).reshape(shape), back)


def test_conv_matrix_rows_share_the_same_weights():
    kernel = np.arange(1.0, 10.0).reshape(3, 3)
    m = conv.conv_matrix(kernel, (5, 5))
    for row in m:
        np.testing.assert_array_equal(np.sort(row[row != 0]), np.arange(1.0, 10.0))


# ------------------------------------------------------------------ transposed convolution
def test_conv_transpose2d_equals_torch_over_a_grid_of_settings(rng):
    x = rng.normal(size=(2, 4, 5))
    for (kh, kw), s, p, c_out in itertools.product(((3, 3), (2, 2), (4, 3)), (1, 2, 3), (0, 1),
                                                   (1, 3)):
        for op in range(s):
            w, b = rng.normal(size=(2, c_out, kh, kw)), rng.normal(size=c_out)
            ours = conv.conv_transpose2d(x, w, b, stride=s, padding=p, output_padding=op)
            layer = nn.ConvTranspose2d(2, c_out, (kh, kw), stride=s, padding=p,
                                       output_padding=op, dtype=torch.float64)
            with torch.no_grad():
                layer.weight.copy_(_t(w))
                layer.bias.copy_(_t(b))
                ref = layer(_t(x)[None])[0]
            torch.testing.assert_close(_t(ours), ref)


def test_seed_examples_one_hot_and_identity_inputs_of_a_3x3_transposed_convolution():
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(1, 1, 3, bias=False)
    k = layer.weight.detach()[0, 0].double().numpy()
    one_hot = np.zeros((3, 3))
    one_hot[0, 0] = 1.0
    with torch.no_grad():
        out_hot = layer(torch.tensor(one_hot, dtype=torch.float32)[None, None])[0, 0].double()
        out_eye = layer(torch.eye(3)[None, None])[0, 0].double()
    expected_hot = np.zeros((5, 5))
    expected_hot[:3, :3] = k  # the kernel itself, placed at the one
    expected_eye = np.zeros((5, 5))
    for i in range(3):  # three copies of the kernel along the diagonal, added
        expected_eye[i: i + 3, i: i + 3] += k
    torch.testing.assert_close(out_hot, _t(expected_hot))
    torch.testing.assert_close(out_eye, _t(expected_eye), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(conv.conv_transpose2d(np.eye(3), k), expected_eye)


def test_worked_2x2_example_overlaps_at_stride_1_and_is_nearest_upsampling_at_stride_2():
    x, ones = np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((2, 2))
    np.testing.assert_array_equal(conv.conv_transpose2d(x, ones),
                                  [[1, 3, 2], [4, 10, 6], [3, 7, 4]])
    np.testing.assert_array_equal(conv.conv_transpose2d(x, ones, stride=2),
                                  conv.upsample(x, 2, "nearest"))


def test_overlap_counts_explain_the_checkerboard():
    # kernel 3, stride 2: interior counts alternate 1, 2 (Odena et al. 2016)
    np.testing.assert_array_equal(conv.overlap_counts(4, 3, 2), [1, 1, 2, 1, 2, 1, 2, 1, 1])
    # kernel 4, stride 2: every interior output is covered twice
    c = conv.overlap_counts(5, 4, 2)
    assert set(c[2:-2]) == {2}
    for n, k, s in itertools.product((3, 6), (1, 2, 3, 5), (1, 2, 3)):
        c = conv.overlap_counts(n, k, s)
        assert c.sum() == n * k and len(c) == (n - 1) * s + k


# ------------------------------------------------------------------ pooling
def test_max_and_mean_pooling_equal_torch(rng):
    x = rng.normal(size=(2, 7, 8))
    for window, stride in itertools.product((2, 3), (1, 2, 3)):
        for kind, ref in (("max", F.max_pool2d), ("mean", F.avg_pool2d)):
            torch.testing.assert_close(_t(conv.pool2d(x, window, stride, kind)),
                                       ref(_t(x)[None], window, stride)[0])
    assert conv.pool2d(x, 2).shape == (2, 3, 4)  # stride defaults to the window


def test_blur_pooling_is_a_binomial_filter_then_subsampling(rng):
    np.testing.assert_array_equal(conv.blur_kernel(3) * 16, [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    x = rng.normal(size=(3, 8, 8))
    for window, stride in itertools.product((2, 3, 4), (1, 2)):
        k = _t(conv.blur_kernel(window))[None, None].repeat(3, 1, 1, 1)
        ref = F.conv2d(_t(x)[None], k, stride=stride, groups=3)[0]
        torch.testing.assert_close(_t(conv.pool2d(x, window, stride, "blur")), ref)
    # a 2x2 binomial window is the mean
    np.testing.assert_allclose(conv.pool2d(x, 2, 2, "blur"), conv.pool2d(x, 2, 2, "mean"))


def test_max_pooling_response_to_an_edge_does_not_move_while_the_edge_stays_in_a_window():
    def pooled(position):
        response = np.maximum(conv.conv2d(conv.edge_image(12, position), [[-1.0, 1.0]]), 0)
        return conv.pool2d(response, 2, 2, "max")

    # the response sits at column position - 1; positions 5 and 6 fall in the window [4, 6)
    np.testing.assert_array_equal(pooled(5), pooled(6))
    assert not np.array_equal(pooled(6), pooled(7))
    assert pooled(5).max() == pooled(7).max() == 1.0


def test_pool2d_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="kind"):
        conv.pool2d(np.zeros((4, 4)), 2, kind="median")


# ------------------------------------------------------------------ upsampling, batch norm
def test_upsample_equals_torch_interpolate(rng):
    x = rng.normal(size=(2, 4, 5))
    for factor in (1, 2, 3, 4):
        torch.testing.assert_close(_t(conv.upsample(x, factor, "nearest")),
                                   F.interpolate(_t(x)[None], scale_factor=factor)[0])
        torch.testing.assert_close(
            _t(conv.upsample(x, factor, "bilinear")),
            F.interpolate(_t(x)[None], scale_factor=factor, mode="bilinear",
                          align_corners=False)[0])


def test_batch_norm_matches_nn_batchnorm2d_in_training_and_evaluation(rng):
    layer = nn.BatchNorm2d(3, dtype=torch.float64)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    with torch.no_grad():
        layer.weight.copy_(_t(gamma))
        layer.bias.copy_(_t(beta))
    rmean, rvar = np.zeros(3), np.ones(3)
    for _ in range(3):  # training: batch statistics, running estimates updated
        x = rng.normal(loc=2.0, scale=3.0, size=(4, 3, 5, 5))
        y, rmean, rvar = conv.batch_norm(x, gamma, beta, running_mean=rmean, running_var=rvar)
        layer.train()
        torch.testing.assert_close(_t(y), layer(_t(x)).detach())
        torch.testing.assert_close(_t(rmean), layer.running_mean)
        torch.testing.assert_close(_t(rvar), layer.running_var)
    x = rng.normal(size=(2, 3, 4, 4))  # evaluation: the running estimates
    y, m2, v2 = conv.batch_norm(x, gamma, beta, running_mean=rmean, running_var=rvar,
                                training=False)
    layer.eval()
    torch.testing.assert_close(_t(y), layer(_t(x)).detach())
    np.testing.assert_array_equal(m2, rmean)
    # in training mode every channel of the output has mean beta and std ~gamma
    y, _, _ = conv.batch_norm(x, gamma, beta)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), np.abs(gamma), rtol=1e-3)


def test_batch_norm_cancels_a_convolution_bias(rng):
    x = rng.normal(size=(4, 2, 6, 6))
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    with_bias = np.stack([conv.conv2d(xi, w, b) for xi in x])
    without = np.stack([conv.conv2d(xi, w) for xi in x])
    np.testing.assert_allclose(conv.batch_norm(with_bias)[0], conv.batch_norm(without)[0],
                               atol=1e-10)


def test_batch_norm_checks_shapes():
    with pytest.raises(ValueError, match="4-D"):
        conv.batch_norm(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="gamma"):
        conv.batch_norm(np.zeros((2, 3, 4, 4)), gamma=np.ones(2))


# ------------------------------------------------------------------ torch modules
def test_a_fully_connected_layer_is_a_convolution_whose_kernel_covers_the_input():
    torch.manual_seed(0)
    linear = nn.Linear(3 * 4 * 5, 7, dtype=torch.float64)
    as_conv = conv.linear_as_conv(linear, (3, 4, 5))
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    torch.testing.assert_close(as_conv(x).flatten(1), linear(x.flatten(1)))
    # on a larger input the same layer slides: its top-left output is the linear layer's
    big = torch.randn(1, 3, 9, 11, dtype=torch.float64)
    out = as_conv(big)
    assert out.shape == (1, 7, 6, 7)
    torch.testing.assert_close(out[0, :, 0, 0], linear(big[:, :, :4, :5].flatten(1))[0])
    with pytest.raises(ValueError, match="values"):
        conv.linear_as_conv(linear, (3, 4, 4))


def test_residual_block_keeps_the_shape_and_is_the_identity_when_its_branch_is_zero():
    torch.manual_seed(0)
    block = conv.ResidualBlock(4)
    assert sum(p.numel() for p in block.parameters()) == 2 * 4 * 4 * 9 + 2 * 2 * 4
    x = torch.rand(2, 4, 8, 8)  # non-negative, like the output of a ReLU
    assert block(x).shape == x.shape
    with torch.no_grad():
        block.residual[-1].weight.zero_()  # last batch norm's scale: the branch outputs beta=0
    block.eval()
    torch.testing.assert_close(block(x), x)
    with pytest.raises(ValueError, match="odd"):
        conv.ResidualBlock(4, kernel=2)


# ------------------------------------------------------------------ receptive fields
def test_receptive_field_closed_forms():
    assert conv.receptive_field([]) == 1
    for n in range(1, 20):  # n 3x3 convolutions: 2n + 1 (DnCNN's 17 layers: 35)
        assert conv.receptive_field([(3, 1)] * n) == 2 * n + 1
    # dilations 1, 2, 4, 8 of a 3x3 kernel: 2^(n+1) - 1
    assert conv.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]) == 31
    # conv 3 / pool 2 / conv 3: the second conv sees neighbours 2 pixels apart
    table = conv.receptive_field_table([(3, 1), (2, 2), (3, 1)])
    assert [r["rf"] for r in table] == [3, 4, 8] and [r["jump"] for r in table] == [1, 2, 2]


def _vgg16_features(device="meta"):
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, device=device), nn.ReLU()]
            c = v
    return nn.Sequential(*layers)


def test_receptive_field_of_vgg16_features_is_212():
    # published value for VGG-16 after pool5 (Araujo et al., 2019)
    assert conv.receptive_field(_vgg16_features()) == 212


def test_receptive_field_rejects_layers_it_cannot_follow():
    with pytest.raises(TypeError, match="Upsample"):
        conv.receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.Upsample(scale_factor=2)))
    with pytest.raises(ValueError, match="layer 1"):
        conv.receptive_field([(3, 1), (3,)])


@pytest.mark.parametrize("stack", [
    [("conv", 3, 1, 1)] * 3,
    [("conv", 3, 1, 1), ("max", 2, 2, 1), ("conv", 3, 1, 1), ("avg", 2, 2, 1), ("conv", 3, 1, 1)],
    [("conv", 3, 2, 1), ("conv", 3, 2, 1), ("conv", 3, 1, 1)],
    [("conv", 3, 1, 1), ("conv", 3, 1, 2), ("conv", 3, 1, 4)],
    [("conv", 5, 1, 1), ("max", 3, 2, 1), ("conv", 3, 1, 1)],
])
def test_empirical_receptive_field_from_autograd_equals_the_rule(stack):
    torch.manual_seed(0)
    layers = []
    for kind, k, s, d in stack:
        if kind == "conv":
            layers += [nn.Conv2d(4 if layers else 1, 4, k, stride=s, dilation=d), nn.ReLU()]
        else:
            layers.append((nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(k, s))
    model = nn.Sequential(*layers)
    predicted = conv.receptive_field(model)
    assert predicted == conv.receptive_field([(k, s, d) for _, k, s, d in stack])
    (h, w), grad = conv.empirical_receptive_field(model, size=2 * predicted + 9, trials=6)
    assert (h, w) == (predicted, predicted)
    assert all(p.grad is None for p in model.parameters())  # the model is left untouched
    assert grad.shape == (2 * predicted + 9,) * 2


# ------------------------------------------------------------------ step-throughs and demos
def test_conv_step_fills_cells_in_raster_order_with_torch_values():
    x, k = np.array(conv.CONV_DEMO_INPUT, float), np.array(conv.CONV_DEMO_KERNEL, float)
    for p, s in itertools.product((0, 1, 2), (1, 2, 3)):
        ref = F.conv2d(_t(x)[None, None], _t(k)[None, None], stride=s, padding=p)[0, 0].numpy()
        for step in range(1, ref.size + 2):
            r = conv.conv_step(x, k, s, p, step)
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
    x = np.array(conv.POOL_DEMO_INPUT, float)
    for kind, w, s in itertools.product(conv.POOL_KINDS, (2, 3), (1, 2)):
        full = conv.pool2d(x, w, s, kind)
        if kind == "max":
            torch.testing.assert_close(_t(full), F.max_pool2d(_t(x)[None], w, s)[0])
        for step in (1, 3, full.size):
            r = conv.pool_step(x, kind, w, s, step)
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
        assert np.isnan(conv.conv_transpose_step(x, kernel, s, 0)["output"]).all()
        for step in range(1, 5):
            r = conv.conv_transpose_step(x, kernel, s, step)
            partial = conv.conv_transpose2d(np.where(np.arange(4).reshape(2, 2) < step, x, 0),
                                            kernel, stride=s)
            reached = ~np.isnan(r["output"])
            np.testing.assert_allclose(r["output"][reached], partial[reached])
            assert (partial[~reached] == 0).all() and r["target"].sum() == k * k
        torch.testing.assert_close(_t(r["output"]), ref)


def test_convolution_demo_frames_equal_torch_conv_for_every_control_position():
    demo = conv.convolution_demo()
    x, k = _t(conv.CONV_DEMO_INPUT)[None, None], _t(conv.CONV_DEMO_KERNEL)[None, None]
    for p, s in itertools.product((0, 1), (1, 2)):
        ref = F.conv2d(x, k, stride=s, padding=p)[0, 0].numpy()
        for cell in range(1, 37):
            out = demo(padding=p, stride=s, cell=cell)["output"]
            filled = ~np.isnan(out)
            assert filled.sum() == min(cell, ref.size)
            np.testing.assert_array_equal(out[filled], ref[filled])
    assert demo.n_combinations <= MAX_FRAMES and demo.js is None


def test_all_demos_build_a_json_spec_within_the_frame_limit():
    for factory in (conv.convolution_demo, conv.pooling_demo, conv.transposed_convolution_demo,
                    conv.overlap_demo):
        demo = factory()
        assert demo.n_combinations <= MAX_FRAMES
        spec = demo.spec()
        assert len(spec["frames"]) == demo.n_combinations
        json.dumps(spec, allow_nan=False)


def test_pooling_and_transposed_demos_return_torch_numbers():
    pool = conv.pooling_demo()
    out = pool(kind="max", window=2, stride=2, cell=9)["output"]
    torch.testing.assert_close(_t(out), F.max_pool2d(_t(conv.POOL_DEMO_INPUT)[None], 2, 2)[0])
    tr = conv.transposed_convolution_demo()
    out = tr(kernel=3, stride=2, step=4)["output"]
    ref = F.conv_transpose2d(_t(conv.TRANSPOSED_DEMO_INPUT)[None, None], torch.ones(
        1, 1, 3, 3, dtype=torch.float64), stride=2)[0, 0]
    torch.testing.assert_close(_t(out), ref)


def test_overlap_demo_verdicts():
    demo = conv.overlap_demo()
    assert demo(kernel=3, stride=2)["verdict"].startswith("uneven")
    assert demo(kernel=4, stride=2)["verdict"].startswith("even")
    assert demo(kernel=1, stride=2)["verdict"].startswith("gaps")
    r = demo(kernel=3, stride=2)
    assert (r["lo"], r["hi"]) == (1.0, 2.0) and r["image"].max() == 1.0


# ------------------------------------------------------------------ figures
def test_plot_matrices_writes_every_finite_value_and_skips_nan():
    import matplotlib.pyplot as plt

    m = np.array([[1.0, np.nan], [3.0, 4.0]])
    fig = conv.plot_matrices([m, np.ones((1, 3))], ["a", "b"])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert sorted(texts) == ["1", "1", "1", "1", "3", "4"]
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    plt.close(fig)


def test_other_figures_draw_one_panel_per_item():
    import matplotlib.pyplot as plt

    figs = [
        (conv.plot_parameter_counts([32, 64], [10, 100], [84, 84]), 1),
        (conv.plot_conv_matrix(conv.conv_matrix(np.ones((3, 3)), (4, 4)), (4, 4), (2, 2)), 1),
        (conv.plot_translation_stability([0, 1], {"a": np.zeros((2, 3)), "b": np.ones((2, 2))}),
         2),
        (conv.plot_receptive_field(np.pad(np.ones((3, 3)), 2), (3, 3), 3), 2),  # + colorbar
        (conv.plot_images([np.zeros((4, 4))] * 3, ["a", "b", "c"], ncols=2), 4),
        (conv.plot_layer_parameters(["conv1", "fc1"], [10, 1000]), 1),
    ]
    for fig, n_axes in figs:
        assert len(fig.axes) == n_axes
        plt.close(fig)
    fig = conv.plot_conv_matrix(conv.conv_matrix(np.arange(1.0, 10.0).reshape(3, 3), (4, 4)),
                                (4, 4), (2, 2))
    assert len(fig.axes[0].texts) == 4 * 9  # the non-zero entries: 9 per output pixel
    plt.close(fig)


def test_demo_highlight_masks_have_the_shape_of_their_grids():
    from nnimaging.demo import Grid

    for demo in (conv.convolution_demo(), conv.pooling_demo(), conv.transposed_convolution_demo()):
        for combo in itertools.product(*(c.positions for c in demo.controls)):
            result = demo(**dict(zip([c.name for c in demo.controls], combo)))
            for panel in demo.panels:
                for mark in panel.marks:
                    if isinstance(mark, Grid) and mark.highlight:
                        mask = np.asarray(result[mark.highlight])
                        assert mask.dtype == bool and mask.shape == np.shape(result[mark.key])
