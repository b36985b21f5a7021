"""Facts about the normalization layers and residual blocks, checked against PyTorch."""

import numpy as np
import pytest
import torch
from torch import nn

from nnimaging import blocks, conv


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_batch_norm_matches_nn_batchnorm2d_in_training_and_evaluation(rng):
    layer = nn.BatchNorm2d(3, dtype=torch.float64)
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    with torch.no_grad():
        layer.weight.copy_(_t(gamma))
        layer.bias.copy_(_t(beta))
    rmean, rvar = np.zeros(3), np.ones(3)
    for _ in range(3):  # training: batch statistics, running estimates updated
        x = rng.normal(loc=2.0, scale=3.0, size=(4, 3, 5, 5))
        y, rmean, rvar = blocks.batch_norm(x, gamma, beta, running_mean=rmean, running_var=rvar)
        layer.train()
        torch.testing.assert_close(_t(y), layer(_t(x)).detach())
        torch.testing.assert_close(_t(rmean), layer.running_mean)
        torch.testing.assert_close(_t(rvar), layer.running_var)
    x = rng.normal(size=(2, 3, 4, 4))  # evaluation: the running estimates
    y, m2, v2 = blocks.batch_norm(x, gamma, beta, running_mean=rmean, running_var=rvar,
                                training=False)
    layer.eval()
    torch.testing.assert_close(_t(y), layer(_t(x)).detach())
    np.testing.assert_array_equal(m2, rmean)
    # in training mode every channel of the output has mean beta and std ~gamma
    y, _, _ = blocks.batch_norm(x, gamma, beta)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), beta, atol=1e-12)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), np.abs(gamma), rtol=1e-3)


def test_batch_norm_cancels_a_convolution_bias(rng):
    x = rng.normal(size=(4, 2, 6, 6))
    w, b = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    with_bias = np.stack([conv.conv2d(xi, w, b) for xi in x])
    without = np.stack([conv.conv2d(xi, w) for xi in x])
    np.testing.assert_allclose(blocks.batch_norm(with_bias)[0], blocks.batch_norm(without)[0],
                               atol=1e-10)


def test_batch_norm_checks_shapes():
    with pytest.raises(ValueError, match="4-D"):
        blocks.batch_norm(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="gamma"):
        blocks.batch_norm(np.zeros((2, 3, 4, 4)), gamma=np.ones(2))


def test_residual_block_keeps_the_shape_and_is_the_identity_when_its_branch_is_zero():
    torch.manual_seed(0)
    block = blocks.ResidualBlock(4)
    assert sum(p.numel() for p in block.parameters()) == 2 * 4 * 4 * 9 + 2 * 2 * 4
    x = torch.rand(2, 4, 8, 8)  # non-negative, like the output of a ReLU
    assert block(x).shape == x.shape
    with torch.no_grad():
        block.residual[-1].weight.zero_()  # last batch norm's scale: the branch outputs beta=0
    block.eval()
    torch.testing.assert_close(block(x), x)
    with pytest.raises(ValueError, match="odd"):
        blocks.ResidualBlock(4, kernel=2)


# ------------------------------------------------------------------ other normalizations
def test_layer_instance_and_group_norm_equal_torch(rng):
    x = rng.normal(2.0, 3.0, size=(3, 6, 5, 4))
    c = x.shape[1]
    g, b = rng.normal(size=c), rng.normal(size=c)
    ln = nn.LayerNorm(x.shape[1:], dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(_t(rng.normal(size=x.shape[1:])))
        ln.bias.copy_(_t(rng.normal(size=x.shape[1:])))
    ours = blocks.layer_norm(x, ln.weight.detach().numpy(), ln.bias.detach().numpy())
    torch.testing.assert_close(_t(ours), ln(_t(x)).detach())
    inorm = nn.InstanceNorm2d(c, affine=True, dtype=torch.float64)
    gn = nn.GroupNorm(3, c, dtype=torch.float64)
    with torch.no_grad():
        for m in (inorm, gn):
            m.weight.copy_(_t(g))
            m.bias.copy_(_t(b))
    torch.testing.assert_close(_t(blocks.instance_norm(x, g, b)), inorm(_t(x)).detach())
    torch.testing.assert_close(_t(blocks.group_norm(x, 3, g, b)), gn(_t(x)).detach())


def test_group_norm_spans_layer_and_instance_norm(rng):
    x = rng.normal(size=(2, 4, 3, 3))
    torch.testing.assert_close(_t(blocks.group_norm(x, 1)), _t(blocks.layer_norm(x)))
    torch.testing.assert_close(_t(blocks.group_norm(x, 4)), _t(blocks.instance_norm(x)))
    bn, _, _ = blocks.batch_norm(x)
    torch.testing.assert_close(_t(blocks.normalize(x, blocks.NORM_AXES["batch"])), _t(bn))


@pytest.mark.parametrize("kind", ["batch", "layer", "instance", "group"])
def test_statistic_groups_name_the_values_that_share_a_mean(kind, rng):
    x = rng.normal(1.0, 2.0, size=(4, 6, 3, 5))
    y = {"batch": lambda: blocks.batch_norm(x)[0], "layer": lambda: blocks.layer_norm(x),
         "instance": lambda: blocks.instance_norm(x),
         "group": lambda: blocks.group_norm(x, 3)}[kind]()
    ids = blocks.statistic_groups(kind, 4, 6, groups=3)
    assert ids.shape == (4, 6)
    for k in np.unique(ids):
        values = y[ids == k]                     # (slices, H, W): everything under one statistic
        assert abs(values.mean()) < 1e-12 and abs(values.var() - 1) < 1e-3, (kind, k)
    assert len(np.unique(ids)) == {"batch": 6, "layer": 4, "instance": 24, "group": 12}[kind]


def test_normalization_errors_say_what_was_expected(rng):
    x = rng.normal(size=(2, 6, 3, 3))
    with pytest.raises(ValueError, match="divide the 6 channels"):
        blocks.group_norm(x, 4)
    with pytest.raises(ValueError, match="axes must be distinct"):
        blocks.normalize(x, (1, 1))
    with pytest.raises(ValueError, match=r"gamma must have shape \(6,\)"):
        blocks.instance_norm(x, gamma=np.ones(3))
    with pytest.raises(ValueError, match="4-D"):
        blocks.layer_norm(x[0])
    with pytest.raises(ValueError, match="kind must be"):
        blocks.statistic_groups("weight", 2, 6)


def test_plot_statistic_groups_has_one_panel_per_normalization():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = blocks.plot_statistic_groups(4, 6, 3)
    assert len(fig.axes) == 4
    assert len(fig.axes[3].texts) == 24
    plt.close(fig)
    fig = blocks.plot_jacobians([np.eye(3), -np.eye(3)], ["a", "b"])
    assert len(fig.axes) == 3                     # two panels and the colour bar
    plt.close(fig)
    with pytest.raises(ValueError, match="one title per matrix"):
        blocks.plot_jacobians([np.eye(3)], ["a", "b"])


# ------------------------------------------------------------------ residual blocks
def test_projection_shortcut_changes_channels_and_resolution():
    block = blocks.ResidualBlock(16, out_channels=32, stride=2)
    for n in (32, 33):
        assert block(torch.rand(2, 16, n, n)).shape == (2, 32, (n + 1) // 2, (n + 1) // 2)
    conv1x1 = block.shortcut[0]
    assert conv1x1.kernel_size == (1, 1) and conv1x1.stride == (2, 2)
    params = sum(p.numel() for p in block.parameters())
    assert params == 16 * 32 * 9 + 32 * 32 * 9 + 16 * 32 + 3 * 2 * 32
    assert blocks.ResidualBlock(16).shortcut is None   # same shape: the identity
    with pytest.raises(ValueError, match="stride"):
        blocks.ResidualBlock(16, stride=0)


def test_pre_activation_block_jacobian_is_identity_plus_the_branch(rng):
    torch.manual_seed(0)
    x = _t(rng.normal(size=(1, 2, 4, 4)))
    pre = blocks.PreActResidualBlock(2).double().eval()
    j, j_f = blocks.jacobian(pre, x), blocks.jacobian(pre.residual, x)
    np.testing.assert_allclose(j - j_f, np.eye(x.numel()), atol=1e-12)


def test_post_activation_block_jacobian_is_gated_by_the_relu(rng):
    torch.manual_seed(0)
    x = _t(rng.normal(size=(1, 2, 4, 4)))
    post = blocks.ResidualBlock(2).double().eval()
    j, j_f = blocks.jacobian(post, x), blocks.jacobian(post.residual, x)
    with torch.no_grad():
        gate = ((x + post.residual(x)) > 0).double().flatten().numpy()
    np.testing.assert_allclose(j, gate[:, None] * (np.eye(x.numel()) + j_f), atol=1e-12)
    assert 0 < gate.sum() < x.numel()             # some rows pass, some are zeroed
    with pytest.raises(TypeError, match="float64"):
        blocks.jacobian(blocks.ResidualBlock(2), x)


# ------------------------------------------------------------------ batch norm in training
def test_small_cnn_variants_start_from_the_same_convolution_weights():
    plain, normed = blocks.small_cnn(False, seed=3), blocks.small_cnn(True, seed=3)
    w_plain = [m.weight for m in plain if isinstance(m, (nn.Conv2d, nn.Linear))]
    w_normed = [m.weight for m in normed if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(w_plain) == len(w_normed) == 5
    for a, b in zip(w_plain, w_normed):
        torch.testing.assert_close(a, b)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in normed) == 4
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain)
    std = w_plain[1].std().item()                 # He: 2 / fan_in = 2 / 72
    assert abs(std - (2 / 72) ** 0.5) < 0.03
    with pytest.raises(ValueError, match="init"):
        blocks.small_cnn(True, init="xavier")


def test_training_curve_is_reproducible_and_learns_a_separable_task():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 2
    images = torch.randn(64, 1, 6, 6, generator=gen, dtype=torch.float64) * 0.1
    images += labels[:, None, None, None].double() * 2 - 1       # class = sign of the mean
    curves = [blocks.training_curve(blocks.small_cnn(True, depth=2, classes=2), images, labels,
                                    lr=0.5, steps=40, batch_size=16) for _ in range(2)]
    np.testing.assert_array_equal(curves[0], curves[1])
    assert curves[0][-5:].mean() < 0.5 * curves[0][:5].mean()


def test_steps_to_reach_uses_a_moving_average():
    losses = np.array([3.0, 0.1, 3.0, 1.0, 1.0, 1.0, np.nan])
    assert blocks.steps_to_reach(losses, 1.0, window=1) == 1
    assert blocks.steps_to_reach(losses, 1.0, window=3) == 5
    assert blocks.steps_to_reach(losses, 0.5, window=3) is None
    assert blocks.steps_to_reach(losses[:2], 1.0, window=3) is None
