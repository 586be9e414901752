"""SSIM / masked SSIM / PSNR against scikit-image and the closed-form formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metrics.psnr import PSNR, psnr_batch
from metrics.ssim import SSIM, ssim_batch, ssim_map, ssim_skimage, to_uint8

TOL = 1e-6   # required agreement with scikit-image, per image


def _skimage_loop(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Direct reference, independent of the module's own skimage wrapper and masking."""
    return np.array([structural_similarity(x, y, channel_axis=-1, data_range=255) for x, y in zip(a, b)])


def _noisy_pair(rng: np.random.Generator, n: int, h: int, w: int, noise: int = 40):
    a = rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    b = np.clip(a.astype(np.int64) + rng.integers(-noise, noise + 1, a.shape), 0, 255).astype(np.uint8)
    return a, b


def _structured(h: int, w: int) -> np.ndarray:
    """[5, H, W, 3] uint8: horizontal gradient, vertical gradient, checkerboard, constant blocks, stripes."""
    yy, xx = np.mgrid[0:h, 0:w]
    grad_x = np.repeat((xx * 255 // max(w - 1, 1))[..., None], 3, axis=2)
    grad_y = np.stack([yy * 255 // max(h - 1, 1), 255 - yy * 255 // max(h - 1, 1), np.full_like(yy, 128)], axis=2)
    checker = np.repeat((((yy // 4 + xx // 4) % 2) * 255)[..., None], 3, axis=2)
    blocks = np.zeros((h, w, 3), np.int64)
    blocks[: h // 2] = (200, 30, 90)
    blocks[h // 2:, : w // 3] = 255
    stripes = np.repeat(((xx % 3) * 100)[..., None], 3, axis=2)
    return np.stack([grad_x, grad_y, checker, blocks, stripes]).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# to_uint8
# ---------------------------------------------------------------------------------------------

def test_to_uint8_truncates_clips_and_moves_channels_last():
    values = torch.tensor([-1.0, -0.999, 0.0, 0.5, 0.999, 1.0, 1.5, -2.0, 0.0039, -0.5])
    # (x + 1)·127.5 in float32: 0, 0.1275, 127.5, 191.25, 254.8725, 255, 318.75, -127.5, 127.997..., 63.75
    expected = [0, 0, 127, 191, 254, 255, 255, 0, 127, 63]
    img = torch.stack([values, values * 0 - 1, values * 0 + 1]).view(1, 3, 1, 10)
    out = to_uint8(img)
    assert out.dtype == torch.uint8 and out.shape == (1, 1, 10, 3)
    assert out[0, 0, :, 0].tolist() == expected
    assert out[0, 0, :, 1].tolist() == [0] * 10 and out[0, 0, :, 2].tolist() == [255] * 10
    # Same as the original numpy conversion of a float32 array.
    ref = ((img.numpy().transpose(0, 2, 3, 1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    assert np.array_equal(out.numpy(), ref)


def test_to_uint8_rejects_bad_input():
    with pytest.raises(ValueError, match='NaN'):
        to_uint8(torch.full((1, 3, 2, 2), float('nan')))
    with pytest.raises(ValueError, match='N, 3, H, W'):
        to_uint8(torch.zeros(1, 1, 2, 2))


# ---------------------------------------------------------------------------------------------
# SSIM against scikit-image
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('n,h,w', [(3, 7, 7), (2, 13, 9), (4, 32, 32), (4, 128, 64), (2, 256, 256)])
def test_ssim_batch_matches_skimage_on_random_images(n, h, w):
    rng = np.random.default_rng(h * 1000 + w)
    a, b = _noisy_pair(rng, n, h, w)
    ours = ssim_batch(torch.from_numpy(a), torch.from_numpy(b))
    assert ours.dtype == torch.float64 and ours.shape == (n,)
    np.testing.assert_allclose(ours.numpy(), _skimage_loop(a, b), rtol=0, atol=TOL)
    # Independent images too (SSIM near 0, where relative errors are largest).
    c = rng.integers(0, 256, a.shape, dtype=np.uint8)
    np.testing.assert_allclose(ssim_batch(a, c).numpy(), _skimage_loop(a, c), rtol=0, atol=TOL)


@pytest.mark.parametrize('h,w', [(32, 32), (128, 64)])
def test_ssim_batch_matches_skimage_on_structured_images(h, w):
    base = _structured(h, w)
    a = np.concatenate([base, base])
    # Second operands: the same patterns shifted/brightened, and fully constant images.
    shifted = np.roll(base, 1, axis=2)
    constants = np.stack([np.full((h, w, 3), v, np.uint8) for v in (0, 255, 17, 128, 200)])
    b = np.concatenate([shifted, constants])
    np.testing.assert_allclose(ssim_batch(a, b).numpy(), _skimage_loop(a, b), rtol=0, atol=TOL)
    # Constant vs a different constant (zero variances: only the luminance term remains).
    c1, c2 = constants[:2], constants[2:4]
    np.testing.assert_allclose(ssim_batch(c1, c2).numpy(), _skimage_loop(c1, c2), rtol=0, atol=TOL)


def test_identical_images_give_one_and_ssim_is_symmetric():
    rng = np.random.default_rng(5)
    a, b = _noisy_pair(rng, 3, 20, 24)
    a = np.concatenate([a, _structured(20, 24)])
    np.testing.assert_allclose(ssim_batch(a, a).numpy(), 1.0, rtol=0, atol=1e-12)
    torch.testing.assert_close(ssim_batch(a[:3], b), ssim_batch(b, a[:3]), rtol=0, atol=1e-12)


def test_full_ssim_map_matches_skimage_including_reflect_borders():
    # The cropped mean hides the border; the full map checks scipy's 'reflect' padding exactly.
    rng = np.random.default_rng(6)
    a, b = _noisy_pair(rng, 2, 11, 9, noise=80)
    s = ssim_map(torch.from_numpy(a), torch.from_numpy(b)).permute(0, 2, 3, 1).numpy()
    for i in range(2):
        _, full = structural_similarity(a[i], b[i], channel_axis=-1, data_range=255, full=True)
        np.testing.assert_allclose(s[i], full, rtol=0, atol=1e-12)


def test_masked_ssim_matches_skimage_on_masked_images():
    rng = np.random.default_rng(7)
    a, b = _noisy_pair(rng, 3, 64, 32)
    mask = np.zeros((3, 1, 64, 32), np.float32)
    mask[0, 0, 10:50, 5:25] = 1
    mask[1] = 1
    yy, xx = np.mgrid[0:64, 0:32]
    mask[2, 0] = ((yy - 30) ** 2 + (xx - 16) ** 2 < 150)
    m = mask[:, 0, :, :, None].astype(np.uint8)
    expected = _skimage_loop(a * m, b * m)
    ours = ssim_batch(torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(mask))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(ssim_skimage(a, b, mask[:, 0]), expected, rtol=0, atol=1e-15)   # [N, H, W] mask
    np.testing.assert_allclose(ours[1].item(), _skimage_loop(a[1:2], b[1:2])[0], rtol=0, atol=TOL)
    # An empty mask blanks both images: identical -> 1.
    assert ssim_batch(a[:1], b[:1], np.zeros((1, 64, 32))).item() == pytest.approx(1.0, abs=1e-12)


def test_ssim_rejects_bad_input():
    a = np.zeros((1, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match='at least 7x7'):
        ssim_batch(np.zeros((1, 6, 8, 3), np.uint8), np.zeros((1, 6, 8, 3), np.uint8))
    with pytest.raises(ValueError, match='uint8'):
        ssim_batch(a.astype(np.float32), a)
    with pytest.raises(ValueError, match='differ'):
        ssim_batch(a, np.zeros((1, 8, 9, 3), np.uint8))
    with pytest.raises(ValueError, match='only 0 and 1'):
        ssim_batch(a, a, np.full((1, 1, 8, 8), 0.5))
    with pytest.raises(ValueError, match='mask must be'):
        ssim_batch(a, a, np.ones((1, 8, 9)))
    with pytest.raises(ValueError, match='backend'):
        SSIM(backend='numpy')


def test_ssim_class_on_float_images_both_backends():
    g = torch.Generator().manual_seed(8)
    images = torch.rand(3, 3, 32, 16, generator=g) * 2.2 - 1.1     # a little out of range on purpose
    targets = (images + 0.1 * torch.randn(3, 3, 32, 16, generator=g)).clamp(-1, 1)
    a = ((images.numpy().transpose(0, 2, 3, 1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    b = ((targets.numpy().transpose(0, 2, 3, 1) + 1) * 127.5).clip(0, 255).astype(np.uint8)
    expected = float(_skimage_loop(a, b).mean())
    value = SSIM()(images, targets)
    assert isinstance(value, float) and value == pytest.approx(expected, abs=TOL)
    assert SSIM(backend='skimage')(images, targets) == pytest.approx(expected, abs=1e-15)
    mask = torch.zeros(3, 1, 32, 16)
    mask[:, :, 8:24, 2:14] = 1
    m = mask.numpy()[:, 0, :, :, None].astype(np.uint8)
    assert SSIM()(images, targets, mask) == pytest.approx(float(_skimage_loop(a * m, b * m).mean()), abs=TOL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_ssim_and_psnr_on_cuda():
    rng = np.random.default_rng(9)
    a, b = _noisy_pair(rng, 2, 32, 32)
    ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
    out = ssim_batch(ta, tb, torch.ones(2, 1, 32, 32))
    assert out.device.type == 'cuda'
    np.testing.assert_allclose(out.cpu().numpy(), _skimage_loop(a, b), rtol=0, atol=TOL)
    assert psnr_batch(ta, tb).device.type == 'cuda'


# ---------------------------------------------------------------------------------------------
# PSNR
# ---------------------------------------------------------------------------------------------

def test_psnr_matches_numpy_formula_and_skimage():
    rng = np.random.default_rng(10)
    a, b = _noisy_pair(rng, 4, 24, 16, noise=20)
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2).reshape(4, -1).mean(axis=1)
    expected = 10 * np.log10(255.0 ** 2 / mse)
    ours = psnr_batch(torch.from_numpy(a), torch.from_numpy(b))
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(ours.numpy(), [peak_signal_noise_ratio(y, x, data_range=255) for x, y in zip(a, b)],
                               rtol=1e-12)


def test_psnr_hand_value_identical_images_and_class():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0] = 255                              # MSE = 255² -> 0 dB
    b[1, 0, 0, 0] = 48                      # MSE = 48² / 48 = 48 -> 10·log10(65025 / 48)
    np.testing.assert_allclose(psnr_batch(a, b).numpy(), [0.0, 10 * np.log10(65025 / 48)], rtol=1e-12)
    assert psnr_batch(a, a).isinf().all()   # documented: identical images give +inf

    g = torch.Generator().manual_seed(11)
    images = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    targets = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    ua = ((images.numpy().transpose(0, 2, 3, 1) + 1) * 127.5).clip(0, 255).astype(np.uint8).astype(np.float64)
    ub = ((targets.numpy().transpose(0, 2, 3, 1) + 1) * 127.5).clip(0, 255).astype(np.uint8).astype(np.float64)
    expected = np.mean(10 * np.log10(255.0 ** 2 / ((ua - ub) ** 2).reshape(2, -1).mean(axis=1)))
    value = PSNR()(images, targets)
    assert isinstance(value, float) and value == pytest.approx(expected, rel=1e-12)
