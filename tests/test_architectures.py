"""Facts about the helpers of chapter 7 (nnimaging.architectures)."""

import numpy as np
import pytest
import torch

from nnimaging import architectures as arch
from nnimaging.demo import Demo, build


# ----------------------------------------------------------------------------- deep stacks
def test_plain_and_residual_stacks_share_their_initial_weights():
    torch.manual_seed(3)
    plain = arch.DeepStack(6, 8, residual=False)
    torch.manual_seed(3)
    res = arch.DeepStack(6, 8, residual=True)
    for (n1, p1), (n2, p2) in zip(plain.named_parameters(), res.named_parameters()):
        assert n1 == n2
        torch.testing.assert_close(p1, p2, rtol=0, atol=0)


def test_plain_stack_is_the_composition_of_its_layers():
    torch.manual_seed(0)
    net = arch.DeepStack(3, 5, residual=False, in_features=2, out_features=4)
    x = torch.randn(7, 2)
    h = net.input(x)
    for layer in net.hidden:
        h = torch.relu(layer(h))
    torch.testing.assert_close(net(x), net.output(h))


def test_residual_stack_with_zero_branches_is_input_then_output_layer():
    torch.manual_seed(0)
    net = arch.DeepStack(4, 6, residual=True)
    with torch.no_grad():
        for layer in net.hidden[1::2]:   # second layer of every pair
            layer.weight.zero_()
            layer.bias.zero_()
    x = torch.randn(9, 1)
    torch.testing.assert_close(net(x), net.output(net.input(x)))


def test_residual_stack_matches_manual_skip_connections():
    torch.manual_seed(1)
    net = arch.DeepStack(4, 3, residual=True)
    x = torch.randn(5, 1)
    h = net.input(x)
    h = h + net.hidden[1](torch.relu(net.hidden[0](torch.relu(h))))
    h = h + net.hidden[3](torch.relu(net.hidden[2](torch.relu(h))))
    torch.testing.assert_close(net(x), net.output(h))


@pytest.mark.parametrize("kwargs", [dict(depth=3, width=4, residual=True),
                                    dict(depth=0, width=4, residual=False),
                                    dict(depth=2, width=1.5, residual=False)])
def test_deep_stack_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError):
        arch.DeepStack(**kwargs)


# ----------------------------------------------------------------------------- relighting
def test_sphere_normals_are_unit_inside_and_fill_a_disc():
    normals, mask = arch.sphere_normals(64)
    norms = np.linalg.norm(normals, axis=-1)
    np.testing.assert_allclose(norms[mask], 1.0, atol=1e-12)
    assert np.all(norms[~mask] == 0)
    assert abs(mask.mean() - np.pi / 4) < 0.01           # disc area / square area
    assert np.all(normals[..., 2][mask] >= 0)            # visible half faces the camera
    # right half points right, top half points up
    assert normals[32, 60, 0] > 0.8 and normals[3, 32, 1] > 0.8


def test_light_direction_conventions():
    np.testing.assert_allclose(arch.light_direction(0, 0), [0, 0, 1], atol=1e-15)
    np.testing.assert_allclose(arch.light_direction(90, 0), [1, 0, 0], atol=1e-15)
    np.testing.assert_allclose(arch.light_direction(0, 90), [0, 1, 0], atol=1e-15)
    d = arch.light_direction(np.array([10.0, -70.0]), np.array([20.0, 45.0]))
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0)
    with pytest.raises(ValueError):
        arch.light_direction(np.zeros(2), np.zeros(3))


def test_light_stage_layout():
    stage = arch.light_stage()
    assert stage.shape == (len(arch.STAGE_AZIMUTHS) * len(arch.STAGE_ELEVATIONS) + 1, 3)
    np.testing.assert_allclose(stage[-1], [0, 1, 0])
    np.testing.assert_allclose(stage[1], arch.light_direction(arch.STAGE_AZIMUTHS[1],
                                                              arch.STAGE_ELEVATIONS[0]))


def test_lambertian_closed_form_at_the_centre_and_limb():
    normals, mask = arch.sphere_normals(33)               # odd: a pixel at the exact centre
    albedo = arch.sphere_albedo(normals)
    light = arch.light_direction(0, 60)
    image = arch.render_lambertian(normals, albedo, light)
    # the centre pixel faces the camera: n = (0, 0, 1), so b = albedo * cos(60 deg)
    assert np.isclose(image[16, 16], albedo[16, 16] * 0.5)
    assert np.isclose(albedo[16, 16], 0.9)                 # lon = lat = 0: 0.6 + 0.3
    assert np.all(image[~mask] == 0) and image.min() >= 0
    # a light from behind lights none of the visible half
    assert np.all(arch.render_lambertian(normals, albedo, [0, 0, -1]) == 0)


def test_olat_columns_are_single_light_renderings():
    normals, _ = arch.sphere_normals(16)
    albedo = arch.sphere_albedo(normals)
    stage = arch.light_stage()
    A = arch.olat_matrix(normals, albedo, stage)
    assert A.shape == (256, len(stage))
    for k in (0, 17, len(stage) - 1):
        np.testing.assert_array_equal(A[:, k].reshape(16, 16),
                                      arch.render_lambertian(normals, albedo, stage[k]))


def test_relighting_is_linear_light_transport():
    """b = A x equals rendering with every basis light on at intensity x_k."""
    normals, _ = arch.sphere_normals(24)
    albedo = arch.sphere_albedo(normals)
    stage = arch.light_stage()
    A = arch.olat_matrix(normals, albedo, stage)
    x = np.random.default_rng(0).uniform(0, 1, len(stage))
    direct = arch.render_lambertian(normals, albedo, stage, intensities=x)
    np.testing.assert_allclose((A @ x).reshape(24, 24), direct, rtol=1e-12, atol=1e-14)
    # superposition: two lights together = sum of the two OLAT images
    both = arch.render_lambertian(normals, albedo, stage[[3, 30]])
    np.testing.assert_allclose(both.ravel(), A[:, 3] + A[:, 30], atol=1e-14)


def test_lobe_weights_are_a_normalized_lobe():
    stage = arch.light_stage()
    target = arch.light_direction(33, 28)
    x = arch.lobe_weights(stage, target)
    assert np.all(x > 0) and np.isclose(x.sum(), 1.0)
    assert np.argmax(x) == np.argmax(stage @ target)       # nearest light weighs most
    # very sharp lobe: all weight on the nearest light
    sharp = arch.lobe_weights(stage, stage[7], kappa=1e4)
    assert np.isclose(sharp[7], 1.0)
    with pytest.raises(ValueError):
        arch.lobe_weights(stage, target, kappa=0)


def test_relighting_result_on_a_basis_light():
    # with a very sharp lobe and the light exactly on a basis light, relit == direct
    r = arch.relighting_result(30, 30, size=20, kappa=1e4)
    np.testing.assert_allclose(r["relit"], r["direct"], atol=1e-12)
    assert r["error"] < 1e-12
    r = arch.relighting_result(45, 15, size=20)
    assert r["relit"].shape == r["direct"].shape == (20, 20)
    assert r["weights"].shape == r["k"].shape == (len(arch.light_stage()),)
    assert 0 < r["error"] < 0.1


def test_relighting_demo_is_registered_with_a_twin():
    demo = build("architectures.relighting", {})
    assert isinstance(demo, Demo) and demo.js is not None
    assert demo.js.entry == "relightingResult"
    assert all(len(c.positions) >= 20 for c in demo.controls)
    out = demo(azimuth=-90, elevation=0)
    ref = arch.relighting_result(-90, 0, size=arch.DEMO_SIZE)
    np.testing.assert_array_equal(out["relit"], ref["relit"])


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError):
        arch.sphere_normals(1)
    normals, _ = arch.sphere_normals(8)
    with pytest.raises(ValueError):
        arch.render_lambertian(normals, np.ones((7, 8)), [0, 0, 1])
    with pytest.raises(ValueError):
        arch.render_lambertian(normals, np.ones((8, 8)), [[0, 0, 1]], intensities=[1, 2])
    with pytest.raises(ValueError):
        arch.plot_filters(np.zeros((4, 3, 5, 5)))


# ----------------------------------------------------------------------------- inception
def test_inception_3a_has_googlenets_output_width_and_multiplications():
    from nnimaging.segmentation import conv_multiplies
    block = arch.InceptionModule(**arch.INCEPTION_3A)
    assert block(torch.zeros(1, 192, 28, 28)).shape == (1, 256, 28, 28)
    weights = 192 * 64 + 192 * 96 + 96 * 128 * 9 + 192 * 16 + 16 * 32 * 25 + 192 * 32
    biases = 64 + 96 + 128 + 16 + 32 + 32
    assert sum(p.numel() for p in block.parameters()) == weights + biases
    # Szegedy et al. (2015), Table 1: 128M operations for inception (3a) on 28 x 28 maps
    assert conv_multiplies(block, (1, 192, 28, 28)) == 28 * 28 * weights
    assert round(28 * 28 * weights / 1e6) == 128


def test_inception_without_reductions_convolves_the_input_directly():
    naive = arch.InceptionModule(**arch.INCEPTION_3A, reduce=False)
    weights = 192 * 64 + 192 * 128 * 9 + 192 * 32 * 25 + 192 * 32
    assert sum(p.numel() for p in naive.parameters()) == weights + 64 + 128 + 32 + 32
    assert naive(torch.zeros(2, 192, 7, 7)).shape == (2, 256, 7, 7)


def test_inception_branches_are_concatenated_in_order():
    torch.manual_seed(0)
    block = arch.InceptionModule(3, 2, 2, 4, 1, 3, 5).double()
    x = torch.randn(1, 3, 9, 9, dtype=torch.float64)
    out = block(x)
    torch.testing.assert_close(out[:, :2], block.branch1(x))
    torch.testing.assert_close(out[:, 2:6], block.branch3(x))
    torch.testing.assert_close(out[:, 6:9], block.branch5(x))
    torch.testing.assert_close(out[:, 9:], block.branch_pool(x))


def test_inception_rejects_a_bad_channel_count():
    with pytest.raises(ValueError, match="c3 must be an integer >= 1"):
        arch.InceptionModule(192, 64, 96, 0, 16, 32, 32)
