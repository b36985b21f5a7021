"""Facts about the chapter-4 convolution helpers, checked against PyTorch and closed forms."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nnimaging import conv


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
