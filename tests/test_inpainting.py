"""nnimaging.inpainting: the masks, the small CNN and the training loop of chapter 3's MLP-against-CNN comparison."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnimaging import inpainting


def test_mask_pixels_is_the_documented_draw_and_keeps_about_keep():
    images = torch.rand(50, 784, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    masked = inpainting.mask_pixels(images, 0.3, torch.Generator().manual_seed(4))
    draw = torch.rand(images.shape, generator=torch.Generator().manual_seed(4))
    assert torch.equal(masked, images * (draw < 0.3))
    assert masked.dtype == torch.float64
    assert abs((masked != 0).double().mean().item() - 0.3) < 0.01


def test_mask_pixels_rejects_bad_input():
    gen = torch.Generator()
    for keep in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="keep"):
            inpainting.mask_pixels(torch.ones(2, 4), keep, gen)
    with pytest.raises(ValueError, match="floating-point"):
        inpainting.mask_pixels(torch.ones(2, 4, dtype=torch.int64), 0.5, gen)


def test_inpainting_cnn_maps_rows_to_rows_with_the_stated_parameter_count():
    torch.manual_seed(0)
    cnn = inpainting.inpainting_cnn((8, 16, 32))
    assert cnn(torch.rand(3, 784)).shape == (3, 784)
    expected = (1 * 8 * 9 + 8) + (8 * 16 * 16 + 16) + (16 * 32 * 16 + 32) \
        + (32 * 16 * 16 + 16) + (16 * 8 * 16 + 8) + (8 * 1 * 9 + 1)
    assert sum(p.numel() for p in cnn.parameters()) == expected == 20705
    with pytest.raises(ValueError, match="multiple of 4"):
        inpainting.inpainting_cnn(side=30)
    with pytest.raises(ValueError, match="channels"):
        inpainting.inpainting_cnn((8, 16))


def test_inpainting_cnn_shares_its_weights_across_positions():
    # Shifting the input by 4 pixels (the product of the strides) shifts the output by 4 pixels,
    # away from the borders: the same weights act at every position. An MLP has no such property.
    torch.manual_seed(0)
    side = 64
    cnn = inpainting.inpainting_cnn((4, 4, 4), side=side).double()
    image = torch.zeros(side, side, dtype=torch.float64)
    image[28:34, 26:36] = torch.randn(6, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    shifted = torch.roll(image, shifts=(4, 4), dims=(0, 1))
    with torch.no_grad():
        out = cnn(image.reshape(1, -1)).reshape(side, side)
        out_shifted = cnn(shifted.reshape(1, -1)).reshape(side, side)
    torch.testing.assert_close(out_shifted[20:48, 20:48], out[16:44, 16:44], rtol=1e-12, atol=1e-12)
    assert not torch.allclose(out[20:48, 20:48], out[16:44, 16:44])


def test_train_inpainter_takes_adam_steps_on_the_documented_batches_and_masks():
    images = torch.rand(10, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 6)).double()
    twin = nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 6)).double()
    twin.load_state_dict(model.state_dict())
    losses = inpainting.train_inpainter(model, images, keep=0.5, epochs=2, batch_size=4, lr=0.01, seed=3)
    assert len(losses) == 6                            # 3 batches (4, 4, 2) per epoch
    opt = torch.optim.Adam(twin.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(3)
    expected = []
    for _ in range(2):
        for batch in torch.randperm(10, generator=gen).split(4):
            y = images[batch]
            x = y * (torch.rand(y.shape, generator=gen) < 0.5)
            loss = 0.5 * ((twin(x) - y) ** 2).sum(dim=1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            expected.append(loss.item())
    assert losses == pytest.approx(expected, rel=1e-12)
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_train_inpainter_rejects_bad_input():
    model = nn.Linear(6, 6)
    with pytest.raises(ValueError, match=r"shape \(N, P\)"):
        inpainting.train_inpainter(model, torch.ones(6), keep=0.5, epochs=1, batch_size=2, lr=0.1)
    with pytest.raises(ValueError, match="epochs"):
        inpainting.train_inpainter(model, torch.ones(4, 6), keep=0.5, epochs=0, batch_size=2, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        inpainting.train_inpainter(model, torch.ones(4, 6), keep=0.5, epochs=1, batch_size=2, lr=0)
    with pytest.raises(ValueError, match="shape of its input"):
        inpainting.train_inpainter(nn.Linear(6, 3), torch.ones(4, 6), keep=0.5, epochs=1, batch_size=2, lr=0.1)
