"""The configurable SSIM and PSNR of the evaluation protocols against scikit-image called with the same
parameters, the pose masks, the averaging rules, and GFLA's torchvision-Inception FID."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from metrics.averaging import AveragingSettings, average, n_used
from metrics.fid import frechet_distance
from metrics.fid_torchvision import (TorchvisionInceptionPool, find_torchvision_inception_weights,
                                     frechet_distance_sqrtm)
from metrics.pose_mask import PoseMaskSettings, pose_masks
from metrics.psnr import PSNRSettings, psnr_batch
from metrics.ssim import SSIMSettings, apply_mask, ssim_batch, ssim_configurable, ssim_map_configurable
from util.pose_util import get_pose_mask

from tests.metrics.weights_helpers import torchvision_inception_weights

TOL = 1e-10


def _pair(seed: int, n: int, h: int, w: int, noise: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, h // 4 + 1, w // 4 + 1, 3)).astype(np.int64)
    a = np.kron(base, np.ones((1, 4, 4, 1), dtype=np.int64))[:, :h, :w]
    b = np.clip(a + rng.integers(-noise, noise + 1, a.shape), 0, 255)
    return a.astype(np.uint8), b.astype(np.uint8)


def _scaled(x: np.ndarray, scaling: str) -> np.ndarray:
    """The float64 images scikit-image saw in each source (float32 steps as there)."""
    if scaling == 'uint8':
        return x.astype(np.float64)
    unit = x.astype(np.float32) / 255.0
    return (unit if scaling == 'unit_float32' else unit * 255.0).astype(np.float64)


def _skimage(gen: np.ndarray, tgt: np.ndarray, s: SSIMSettings) -> np.ndarray:
    out = []
    for g, t in zip(gen, tgt):
        gs, ts = _scaled(g, s.scaling), _scaled(t, s.scaling)
        if s.data_range == 'generated_range':
            # GFLA: data_range=pred.max() - pred.min() of the float32 image
            img = g.astype(np.float32) / 255.0 * (255.0 if s.scaling == 'unit_float32_x255' else 1.0)
            data_range = float(img.max() - img.min())
        else:
            data_range = 1.0 if s.scaling == 'unit_float32' else 255.0
        kwargs = dict(gaussian_weights=True, sigma=s.sigma) if s.gaussian else dict(win_size=s.window)
        out.append(structural_similarity(ts, gs, channel_axis=-1, data_range=data_range,
                                         use_sample_covariance=s.sample_covariance, **kwargs))
    return np.array(out)


VARIANTS = {
    'original (7, uint8)': SSIMSettings(),
    'gfla ssim (51, [0,1])': SSIMSettings(window=51, scaling='unit_float32'),
    'uniform 11 population cov': SSIMSettings(window=11, scaling='uint8', sample_covariance=False),
    'gfla ssim_256 (sigma 1.5)': SSIMSettings(window=None, gaussian=True, sigma=1.5, scaling='unit_float32_x255',
                                              data_range='generated_range', sample_covariance=False),
    'pidm (sigma 1.2)': SSIMSettings(window=None, gaussian=True, sigma=1.2, scaling='unit_float32_x255',
                                     data_range='generated_range', sample_covariance=False),
    'gaussian sample cov [0,1]': SSIMSettings(window=None, gaussian=True, sigma=1.5, scaling='unit_float32'),
}


@pytest.mark.parametrize('name', list(VARIANTS))
@pytest.mark.parametrize('h,w', [(64, 64), (128, 64)])
def test_ssim_variants_match_skimage_with_the_same_parameters(name, h, w):
    settings = VARIANTS[name]
    gen, tgt = _pair(h + w, 3, h, w)
    ours = ssim_configurable(torch.from_numpy(gen), torch.from_numpy(tgt), settings)
    assert ours.dtype == torch.float64 and ours.shape == (3,)
    np.testing.assert_allclose(ours.numpy(), _skimage(gen, tgt, settings), rtol=0, atol=TOL)
    # The float64 path agrees with the integer path on the original's settings too.
    if settings == SSIMSettings():
        np.testing.assert_allclose(ssim_map_configurable(gen, tgt, settings).mean(dim=(1, 2, 3)).numpy(),
                                   ssim_batch(gen, tgt).numpy(), rtol=0, atol=1e-13)


def test_gaussian_window_size_follows_sigma_like_skimage():
    assert SSIMSettings(window=None, gaussian=True, sigma=1.5).crop_window == 11
    assert SSIMSettings(window=None, gaussian=True, sigma=1.2).crop_window == 9
    assert SSIMSettings(window=None, gaussian=True, sigma=1.5).filter_radius == 5
    # scikit-image 0.14: scipy's default truncate 4.0 -> 13 taps, while the crop stays 5 pixels (win_size 11).
    old = SSIMSettings(window=11, gaussian=True, sigma=1.5, truncate=4.0)
    assert old.filter_radius == 6 and old.crop_window == 11


def test_skimage_014_gaussian_variant_against_scipy_directly():
    """0.14 filtered with gaussian_filter(sigma) (truncate 4.0) and cropped 5 pixels: a reference written with
    scipy.ndimage, since today's scikit-image fixes truncate at 3.5."""
    settings = SSIMSettings(window=11, gaussian=True, sigma=1.5, truncate=4.0, scaling='uint8', data_range='full',
                            sample_covariance=False)
    gen, tgt = _pair(7, 2, 48, 40)
    expected = []
    for g, t in zip(gen, tgt):
        per_channel = []
        for c in range(3):
            x, y = t[..., c].astype(np.float64), g[..., c].astype(np.float64)
            f = lambda z: ndimage.gaussian_filter(z, 1.5, mode='reflect', truncate=4.0)  # noqa: E731
            ux, uy, uxx, uyy, uxy = f(x), f(y), f(x * x), f(y * y), f(x * y)
            vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
            c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
            s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
            per_channel.append(s[5:-5, 5:-5].mean())
        expected.append(np.mean(per_channel))
    np.testing.assert_allclose(ssim_configurable(gen, tgt, settings).numpy(), expected, rtol=0, atol=TOL)


def test_masked_variant_is_the_variant_on_masked_images():
    settings = VARIANTS['gfla ssim (51, [0,1])']
    gen, tgt = _pair(3, 2, 128, 64)
    mask = torch.zeros(2, 1, 128, 64)
    mask[:, :, 20:100, 10:50] = 1
    a, b = apply_mask(torch.from_numpy(gen), torch.from_numpy(tgt), mask)
    assert torch.equal(ssim_configurable(gen, tgt, settings, mask), ssim_configurable(a, b, settings))


def test_generated_range_rule_rejects_a_constant_image_and_settings_validate():
    settings = VARIANTS['gfla ssim_256 (sigma 1.5)']
    gen = np.full((1, 32, 32, 3), 7, np.uint8)
    with pytest.raises(ValueError, match='constant'):
        ssim_configurable(gen, gen, settings)
    with pytest.raises(ValueError, match='odd'):
        SSIMSettings(window=8)
    with pytest.raises(ValueError, match='scaling'):
        SSIMSettings(scaling='float')
    with pytest.raises(ValueError, match='at least'):
        ssim_configurable(np.zeros((1, 40, 40, 3), np.uint8), np.zeros((1, 40, 40, 3), np.uint8),
                          VARIANTS['gfla ssim (51, [0,1])'])


def test_psnr_float_variant_matches_skimage_on_float32_images():
    gen, tgt = _pair(11, 3, 32, 16)
    ours = psnr_batch(gen, tgt, PSNRSettings('unit_float32')).numpy()
    ref = [peak_signal_noise_ratio(t.astype(np.float32) / 255, g.astype(np.float32) / 255, data_range=1)
           for g, t in zip(gen, tgt)]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    # Same quantity as the uint8 PSNR up to float32 rounding.
    np.testing.assert_allclose(ours, psnr_batch(gen, tgt).numpy(), rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match='scaling'):
        PSNRSettings('float64')


def test_pose_masks_follow_the_settings():
    rng = np.random.default_rng(0)
    kps = np.stack([rng.uniform(2, 60, (2, 18)), rng.uniform(2, 120, (2, 18))], axis=-1)
    kps[0, 3] = -1
    for settings in (PoseMaskSettings(), PoseMaskSettings(transposed=False, norm_eps=0.0, keypoint_dtype='float64')):
        masks = pose_masks(kps, (128, 64), settings)
        assert masks.dtype == torch.uint8 and masks.shape == (2, 1, 128, 64)
        for i in range(2):
            ref = get_pose_mask(kps[i].astype(settings.keypoint_dtype), (128, 64), settings.radius,
                                settings.transposed, settings.norm_eps)
            assert np.array_equal(masks[i, 0].numpy(), ref.astype(np.uint8))
    with pytest.raises(ValueError, match='apply'):
        PoseMaskSettings(apply='grey')


def test_averaging_rules():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert average(values, AveragingSettings('mean')) == pytest.approx(5.5)
    # Batches of 4: means 2.5, 6.5, 9.5 -> the partial batch weighs as much as a full one.
    assert average(values, AveragingSettings('batch_means', 4)) == pytest.approx(6.166666, abs=1e-6)
    third = np.array([0.1, 0.2, 0.3])
    assert average(third, AveragingSettings('batch_means', 8, True)) == float(np.float32(0.2))
    assert average(third, AveragingSettings('batch_means', 8, False)) == pytest.approx(0.2, abs=1e-15)
    # GFLA's dropped remainder: the batch shrinks to N below 64, else only whole batches count.
    assert [n_used(n, 64, True) for n in (0, 12, 64, 130, 8570)] == [0, 12, 64, 128, 8512]
    assert n_used(130, 64, False) == 130
    with pytest.raises(ValueError, match='rule'):
        AveragingSettings('median')


def test_torchvision_fid_features_are_inception_v3_pool_with_the_early_pytorch_fid_mapping(tmp_path_factory):
    """GFLA's FID network: torchvision's Inception-v3 up to the 2048-d pool (no transform_input), on
    ``float32(v) / 255`` resized bilinearly to 299 and mapped by ``x·std/0.5 + (mean - 0.5)/0.5``. Both weight
    files (today's, and the legacy pickle without num_batches_tracked) load."""
    images = _pair(5, 2, 64, 48)[0]
    path = torchvision_inception_weights(tmp_path_factory)
    feats = TorchvisionInceptionPool(path).features(images)
    assert feats.shape == (2, 2048) and feats.dtype == np.float64

    net = torchvision.models.Inception3(num_classes=1000, aux_logits=True, transform_input=False, init_weights=False)
    net.load_state_dict(torch.load(path, weights_only=True))
    net.fc = torch.nn.Identity()
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x = torch.nn.functional.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
    for c, (mean, std) in enumerate(zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))):
        x[:, c] = x[:, c] * (std / 0.5) + (mean - 0.5) / 0.5
    with torch.no_grad():
        expected = net.eval()(x).double().numpy()
    np.testing.assert_allclose(feats, expected, rtol=0, atol=1e-5)

    legacy = torchvision_inception_weights(tmp_path_factory, legacy=True)
    np.testing.assert_array_equal(TorchvisionInceptionPool(legacy).features(images), feats)
    with pytest.raises(FileNotFoundError, match='--fid_weights'):
        find_torchvision_inception_weights(legacy.parent / 'absent.pth')


def test_sqrtm_frechet_distance_agrees_with_the_exact_one():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(60, 8)), rng.normal(0.3, 1.2, size=(70, 8))
    assert frechet_distance_sqrtm(a, b) == pytest.approx(frechet_distance(a, b), rel=1e-9)
    with pytest.raises(ValueError, match='feature sets'):
        frechet_distance_sqrtm(a[:1], b)
