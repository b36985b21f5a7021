"""Facts about the degradations (nnimaging.degrade): noise, blur kernels, circular blur and the Wiener filter."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nnimaging.degrade import (
    Degradation,
    add_gaussian_noise,
    blur,
    gaussian_blur,
    gaussian_kernel1d,
    gaussian_kernel2d,
    kernel_from_spec,
    kernel_spectrum,
    motion_blur_kernel,
    noisy_batch,
    wiener_deconvolve,
)


def _piecewise_smooth(h=64, w=64):
    """A smooth pattern plus a bright rectangle (edges), float64 values in [0, 1]."""
    rows, cols = np.mgrid[0:h, 0:w]
    box = (rows > h // 3) & (rows < 2 * h // 3) & (cols > w // 4) & (cols < 3 * w // 4)
    return 0.4 + 0.3 * np.sin(cols / 5) * np.cos(rows / 7) + 0.2 * box


# An asymmetric kernel (a flip or a shift would show) whose spectrum stays >= 0.6 - 0.25 - 0.15 = 0.2.
ASYMMETRIC = np.array([[0.0, 0.0, 0.0], [0.0, 0.6, 0.25], [0.0, 0.15, 0.0]])


# ------------------------------------------------------------------------------ noise


def test_noise_is_reproducible_by_seed_and_has_the_requested_level():
    image = np.full((300, 300), 0.5, np.float32)
    a = add_gaussian_noise(image, 25, seed=7)
    assert a.dtype == np.float32 and a.shape == image.shape
    np.testing.assert_array_equal(a, add_gaussian_noise(image, 25, seed=7))
    assert not np.array_equal(a, add_gaussian_noise(image, 25, seed=8))
    # exactly image + sigma/255 * default_rng(seed).standard_normal, computed in float64
    expected = (0.5 + 25 / 255 * np.random.default_rng(7).standard_normal(image.shape)).astype(np.float32)
    np.testing.assert_array_equal(a, expected)
    assert np.std(a - image) == pytest.approx(25 / 255, rel=0.01)
    strong = add_gaussian_noise(image, 100, 7)
    assert strong.min() < 0 and strong.max() > 1  # not clipped


def test_noise_arguments_are_checked():
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        add_gaussian_noise(np.zeros((4, 4)), -1)
    with pytest.raises(TypeError, match="float array"):
        add_gaussian_noise(np.zeros((4, 4), np.uint8), 25)


def test_noisy_batch_scales_standard_normal_noise_per_image():
    clean = torch.rand(3, 1, 6, 6)
    sigma = torch.tensor([0.0, 25.0, 50.0])
    noisy = noisy_batch(clean, sigma, torch.Generator().manual_seed(3))
    z = torch.randn(clean.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(noisy, clean + sigma.view(-1, 1, 1, 1) / 255 * z)
    torch.testing.assert_close(noisy_batch(clean, 25, torch.Generator().manual_seed(3)), clean + 25 / 255 * z)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        noisy_batch(clean, torch.ones(2))


# ------------------------------------------------------------------------------ Gaussian filter


def test_gaussian_kernel_matches_the_closed_form():
    k = gaussian_kernel1d(1.5)
    x = np.arange(-5, 6)  # radius ceil(3 * 1.5) = 5
    expected = np.exp(-(x**2) / (2 * 1.5**2))
    np.testing.assert_allclose(k.numpy(), expected / expected.sum(), rtol=1e-6)
    assert torch.equal(gaussian_kernel1d(0), torch.ones(1))
    with pytest.raises(ValueError, match="std must be"):
        gaussian_kernel1d(-1)


def test_gaussian_blur_is_a_separable_2d_convolution_with_reflected_borders():
    images = torch.rand(2, 1, 12, 15)
    k = gaussian_kernel1d(1.0)
    kernel2d = torch.outer(k, k)[None, None]
    expected = F.conv2d(F.pad(images, (3, 3, 3, 3), mode="reflect"), kernel2d)
    torch.testing.assert_close(gaussian_blur(images, 1.0), expected)
    constant = torch.full((1, 1, 9, 9), 0.3)
    torch.testing.assert_close(gaussian_blur(constant, 2.0), constant)  # weights sum to one


def test_gaussian_kernel2d_is_the_outer_product_of_the_closed_form():
    k = gaussian_kernel2d(1.2)
    x = np.arange(-4, 5)  # radius ceil(3 * 1.2) = 4
    g = np.exp(-(x**2) / (2 * 1.2**2))
    np.testing.assert_allclose(k, np.outer(g, g) / g.sum() ** 2, rtol=1e-12)
    assert k.dtype == np.float64 and k.sum() == pytest.approx(1, abs=1e-15)
    np.testing.assert_allclose(k.astype(np.float32)[4], gaussian_kernel1d(1.2).numpy() * k[4].sum(), rtol=1e-6)
    assert np.array_equal(gaussian_kernel2d(0), np.ones((1, 1)))


# ------------------------------------------------------------------------------ motion blur


@pytest.mark.parametrize("length", [1, 2, 4.5, 7, 15])
@pytest.mark.parametrize("angle", [0, 17, 30, 45, 60, 90, 123, 200, -40])
def test_motion_kernel_is_normalised_odd_and_symmetric_under_half_turn(length, angle):
    k = motion_blur_kernel(length, angle)
    assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert k.sum() == pytest.approx(1, abs=1e-12) and k.min() >= 0
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)  # the segment is centred on the middle pixel
    np.testing.assert_allclose(motion_blur_kernel(length, angle + 180), k, atol=1e-15)
    # the outer ring is not all zero (smallest square), unless the kernel is a single pixel
    assert k.shape == (1, 1) or k[0].any() or k[:, 0].any()


def test_motion_kernel_angle_zero_is_horizontal_and_ninety_is_vertical():
    k = motion_blur_kernel(5, 0)
    expected = np.zeros((5, 5))
    expected[2] = 1 / 5  # an odd length at 0 degrees is exactly a horizontal box
    np.testing.assert_array_equal(k, expected)
    np.testing.assert_array_equal(motion_blur_kernel(5, 90), expected.T)
    assert np.array_equal(motion_blur_kernel(1, 0), np.ones((1, 1)))
    # 45 degrees runs from bottom-left to top-right, as displayed (row 0 at the top)
    k45 = motion_blur_kernel(7, 45)
    r = k45.shape[0] // 2
    assert k45[:r, r + 1 :].sum() > 0.3 and k45[r + 1 :, :r].sum() > 0.3  # top-right and bottom-left
    assert k45[:r, :r].sum() == 0 and k45[r + 1 :, r + 1 :].sum() == 0  # nothing top-left or bottom-right
    np.testing.assert_allclose(motion_blur_kernel(7, -45), k45[:, ::-1], atol=1e-15)  # mirror image


@pytest.mark.parametrize("angle", [0, 20, 45, 70, 110, 160])
def test_motion_kernel_spreads_along_its_angle_with_the_variance_of_a_segment(angle):
    length = 21
    k = motion_blur_kernel(length, angle)
    r = k.shape[0] // 2
    rows, cols = np.mgrid[-r : r + 1, -r : r + 1]
    x, y = cols, -rows  # y upwards
    assert (k * x).sum() == pytest.approx(0, abs=1e-12) and (k * y).sum() == pytest.approx(0, abs=1e-12)
    cov = np.array([[(k * x * x).sum(), (k * x * y).sum()], [(k * x * y).sum(), (k * y * y).sum()]])
    values, vectors = np.linalg.eigh(cov)
    direction = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1])) % 180
    assert min(abs(direction - angle), 180 - abs(direction - angle)) < 1.0
    # variance along the motion: a uniform segment of length L has L^2 / 12 (plus pixel blur, 1/12)
    assert values[1] == pytest.approx(length**2 / 12, rel=0.05)
    assert values[0] < 0.5  # about one pixel wide


def test_motion_kernel_arguments_are_checked():
    with pytest.raises(ValueError, match="length must be a finite number >= 1"):
        motion_blur_kernel(0.5)
    with pytest.raises(ValueError, match="angle must be a finite number"):
        motion_blur_kernel(5, float("nan"))
    with pytest.raises(TypeError, match="must be numbers"):
        motion_blur_kernel(None)


# ------------------------------------------------------------------------------ circular blur


def test_blur_is_a_circular_convolution_centred_on_the_kernel_centre():
    rng = np.random.default_rng(0)
    image = rng.random((12, 17))
    kernel = rng.random((3, 5))
    kernel /= kernel.sum()
    expected = sum(
        kernel[a, b] * np.roll(image, (a - 1, b - 2), axis=(0, 1)) for a in range(3) for b in range(5)
    )  # y[i, j] = sum_ab k[a, b] x[i - (a - 1), j - (b - 2)], indices mod (H, W)
    np.testing.assert_allclose(blur(image, kernel), expected, atol=1e-14)
    # inside the image the circular blur is the flipped-kernel correlation of PyTorch
    inner = F.conv2d(torch.from_numpy(image)[None, None], torch.from_numpy(kernel[::-1, ::-1].copy())[None, None])
    np.testing.assert_allclose(blur(image, kernel)[1:-1, 2:-2], inner[0, 0].numpy(), atol=1e-14)


def test_blur_of_a_delta_is_the_kernel_at_that_pixel():
    delta = np.zeros((24, 30))
    delta[5, 7] = 1
    k = motion_blur_kernel(6, 30)
    r = k.shape[0] // 2
    out = blur(delta, k)
    np.testing.assert_allclose(out[5 - r : 5 + r + 1, 7 - r : 7 + r + 1], k, atol=1e-15)
    assert out.sum() == pytest.approx(1, abs=1e-12)


def test_kernel_spectrum_is_centred_so_symmetric_kernels_have_real_spectra():
    np.testing.assert_allclose(kernel_spectrum(np.ones((1, 1)), (6, 8)), np.ones((6, 8)), atol=0)
    for k in [gaussian_kernel2d(1.5), motion_blur_kernel(9, 30)]:  # both equal their 180-degree rotation
        spectrum = kernel_spectrum(k, (32, 40))
        assert spectrum[0, 0] == pytest.approx(1, abs=1e-12)  # the sum of the kernel
        assert np.abs(spectrum.imag).max() < 1e-14  # no phase ramp: the kernel is not shifted
    # the same as ifftshift of the kernel padded with its centre at (H // 2, W // 2)
    padded = np.zeros((31, 40))
    padded[15 - 1 : 15 + 2, 20 - 1 : 20 + 2] = ASYMMETRIC
    np.testing.assert_allclose(kernel_spectrum(ASYMMETRIC, (31, 40)), np.fft.fft2(np.fft.ifftshift(padded)), atol=1e-14)


def test_blur_on_tensors_matches_numpy_and_keeps_dtype_and_gradient():
    rng = np.random.default_rng(1)
    images = rng.random((2, 1, 16, 20))
    k = motion_blur_kernel(5, 30)
    for dtype, tol in [(torch.float64, 1e-14), (torch.float32, 1e-6)]:
        x = torch.tensor(images, dtype=dtype, requires_grad=True)
        y = blur(x, torch.from_numpy(k))
        assert y.shape == x.shape and y.dtype == dtype
        for n in range(2):
            np.testing.assert_allclose(y[n, 0].detach().numpy(), blur(images[n, 0], k), atol=tol)
        y.sum().backward()  # the adjoint of a blur with weights summing to 1 maps ones to ones
        torch.testing.assert_close(x.grad, torch.ones_like(x))
    assert blur(images[0, 0].astype(np.float32), k).dtype == np.float32


# ------------------------------------------------------------------------------ Wiener filter


@pytest.mark.parametrize("kernel", [gaussian_kernel2d(0.7), ASYMMETRIC], ids=["gaussian", "asymmetric"])
def test_noiseless_well_posed_blur_is_inverted_exactly_with_nsr_zero(kernel):
    image = np.random.default_rng(2).random((32, 40))
    assert np.abs(kernel_spectrum(kernel, image.shape)).min() > 0.02  # no zeros: well posed
    np.testing.assert_allclose(wiener_deconvolve(blur(image, kernel), kernel, 0), image, atol=1e-8, rtol=0)
    batch = torch.from_numpy(np.stack([image, image[::-1].copy()]))[:, None]
    restored = wiener_deconvolve(blur(batch, kernel), kernel, 0)
    assert restored.dtype == torch.float64
    torch.testing.assert_close(restored, batch, atol=1e-8, rtol=0)


def test_deconvolution_does_not_shift_the_image():
    delta = np.zeros((24, 30))
    delta[5, 7] = 1
    np.testing.assert_allclose(wiener_deconvolve(blur(delta, ASYMMETRIC), ASYMMETRIC, 0), delta, atol=1e-12)
    for k in [gaussian_kernel2d(2.0), motion_blur_kernel(9, 30)]:
        estimate = wiener_deconvolve(blur(delta, k), k, 1e-3)
        assert np.unravel_index(np.argmax(estimate), delta.shape) == (5, 7)


def test_wiener_with_nsr_is_the_closed_form_filter():
    rng = np.random.default_rng(3)
    y = rng.random((16, 18))
    k = motion_blur_kernel(7, 60)
    K = kernel_spectrum(k, y.shape)
    expected = np.fft.ifft2(np.conj(K) * np.fft.fft2(y) / (np.abs(K) ** 2 + 0.05)).real
    np.testing.assert_allclose(wiener_deconvolve(y, k, 0.05), expected, atol=1e-14)
    # a huge nsr gives conj(K) Y / nsr: the blur's adjoint, scaled
    np.testing.assert_allclose(wiener_deconvolve(y, k, 1e6) * 1e6, blur(y, k[::-1, ::-1]), rtol=1e-5)


def test_noise_amplification_of_the_inverse_filter_and_damping_by_nsr():
    image = _piecewise_smooth()
    sigma = 0.01
    noise = sigma * np.random.default_rng(4).standard_normal(image.shape)

    def mse(kernel, nsr):
        return np.mean((wiener_deconvolve(blur(image, kernel) + noise, kernel, nsr) - image) ** 2)

    # well conditioned (min |K| ~ 0.03): the inverse filter's error is sigma^2 mean(1 / |K|^2)
    narrow = gaussian_kernel2d(0.7)
    K = kernel_spectrum(narrow, image.shape)
    assert mse(narrow, 0) == pytest.approx(sigma**2 * np.mean(1 / np.abs(K) ** 2), rel=0.1)
    assert mse(narrow, 1e-2) < mse(narrow, 0) / 3  # a moderate nsr beats the inverse filter
    # near-zeros in the spectrum (min |K| ~ 2e-4): the error explodes as nsr -> 0
    wide = gaussian_kernel2d(1.0)
    assert np.abs(kernel_spectrum(wide, image.shape)).min() < 1e-3
    errors = [mse(wide, nsr) for nsr in [0, 1e-6, 1e-4, 1e-2]]
    assert errors == sorted(errors, reverse=True)
    assert errors[0] > 1e4 * sigma**2 and errors[0] > 1e4 * errors[-1]


def test_wiener_arguments_are_checked_with_clear_errors():
    image = np.random.default_rng(5).random((16, 16))
    k = gaussian_kernel2d(1.0)
    with pytest.raises(ValueError, match="nsr must be a finite number >= 0, got -0.1"):
        wiener_deconvolve(image, k, -0.1)
    with pytest.raises(TypeError, match="nsr must be a finite number >= 0, got 'small'"):
        wiener_deconvolve(image, k, "small")
    with pytest.raises(ValueError, match=r"normalised to sum 1.*got sum 2"):
        wiener_deconvolve(image, 2 * k, 0.01)
    with pytest.raises(ValueError, match=r"odd height and width.*\(2, 2\)"):
        wiener_deconvolve(image, np.full((2, 2), 0.25), 0.01)
    with pytest.raises(ValueError, match=r"2-D array.*\(1, 3, 3\)"):
        blur(image, np.full((1, 3, 3), 1 / 9))
    with pytest.raises(ValueError, match=r"larger than the image"):
        blur(image, np.full((17, 1), 1 / 17))
    with pytest.raises(ValueError, match=r"\(H, W\) numpy array or an \(N, C, H, W\) float tensor, got shape \(2, 16, 16\)"):
        blur(np.stack([image, image]), k)
    with pytest.raises(ValueError, match=r"got a tensor of shape \(16, 16\).*x\[None, None\]"):
        blur(torch.from_numpy(image), k)
    with pytest.raises(ValueError, match=r"tensor of shape \(1, 1, 16, 16\) and dtype torch.int64"):
        blur(torch.zeros(1, 1, 16, 16, dtype=torch.int64), k)
    with pytest.raises(TypeError, match="float array, got dtype uint8"):
        wiener_deconvolve((image * 255).astype(np.uint8), k, 0.01)
    # a box of 3 pixels on a 6-pixel-wide grid has an exact zero at 1/3 of the sampling rate
    with pytest.raises(ValueError, match=r"spectrum vanishes.*use nsr > 0"):
        wiener_deconvolve(np.zeros((6, 6)), motion_blur_kernel(3, 0), 0)
    assert np.all(np.isfinite(wiener_deconvolve(np.zeros((6, 6)), motion_blur_kernel(3, 0), 1e-3)))


def test_kernel_from_spec_builds_the_named_kernels():
    np.testing.assert_array_equal(kernel_from_spec("gaussian:1.5"), gaussian_kernel2d(1.5))
    np.testing.assert_array_equal(kernel_from_spec("motion:9:30"), motion_blur_kernel(9, 30))
    np.testing.assert_array_equal(kernel_from_spec("motion:5"), motion_blur_kernel(5))
    for bad in ("gaussian", "box:3", "gaussian:1:2", "motion:a", 3):
        with pytest.raises(ValueError, match="blur kernel spec"):
            kernel_from_spec(bad)


def test_degradation_for_training_and_testing_is_the_same_forward_model():
    rng = np.random.default_rng(0)
    clean = rng.random((32, 32)).astype(np.float32)
    # denoising: image() is add_gaussian_noise, batch() is noisy_batch
    plain = Degradation()
    assert plain.task == "denoise" and plain.describe() == {"task": "denoise"}
    np.testing.assert_array_equal(plain.image(clean, 25, seed=3), add_gaussian_noise(clean, 25, seed=3))
    # deblurring: blur, then noise, then (optionally) Wiener with the stated NSR
    deblur = Degradation("motion:5:0", wiener_nsr=0.01)
    k = motion_blur_kernel(5, 0)
    expected = wiener_deconvolve(add_gaussian_noise(blur(clean.astype(np.float64), k), 10, seed=1), k, 0.01)
    np.testing.assert_allclose(deblur.image(clean, 10, seed=1), expected, rtol=1e-5, atol=1e-6)
    assert deblur.describe() == {"task": "deblur", "blur": "motion:5:0", "boundary": "circular", "wiener_nsr": 0.01}
    # with no noise the batch path equals the image path (torch vs numpy)
    x = torch.from_numpy(clean)[None, None]
    np.testing.assert_allclose(deblur.batch(x, 0.0)[0, 0].numpy(), deblur.image(clean, 0.0), atol=1e-5)
    only_blur = Degradation("gaussian:1")
    np.testing.assert_allclose(only_blur.batch(x, 0.0)[0, 0].numpy(), blur(clean, gaussian_kernel2d(1.0)), atol=1e-6)
    # per-patch noise levels in training, like blind denoising
    g = torch.Generator().manual_seed(0)
    noisy = only_blur.batch(x.repeat(2, 1, 1, 1), torch.tensor([0.0, 50.0]), g)
    residual = noisy - only_blur.batch(x.repeat(2, 1, 1, 1), 0.0)
    assert residual[0].abs().max() == 0 and 0.1 < residual[1].std() < 0.3


def test_degradation_arguments_are_checked():
    with pytest.raises(ValueError, match="needs a blur kernel"):
        Degradation(None, wiener_nsr=0.01)
    with pytest.raises(ValueError, match="wiener_nsr must be a finite number >= 0"):
        Degradation("gaussian:1", wiener_nsr=-1)
