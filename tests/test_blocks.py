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
