"""FID (torch-fidelity) and LPIPS (lpips package) with offline weights, against the libraries' own pipelines."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.metrics.weights_helpers import (DF_IDS, MARKET_IDS, alexnet_weights, fidelity_inception_weights,
                                           pair_stems, write_images)
from metrics.fid import compute_fid, extract_pool3, frechet_distance, real_target_paths
from metrics.inception_score import TorchFidelityInception
from metrics.lpips_metric import build_lpips, compute_lpips, find_backbone_weights, lpips_pairs


@pytest.fixture(scope='module')
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp('fid_lpips')
    write_images(root / 'real', MARKET_IDS[:3], ext='png', seed=1)
    write_images(root / 'gen', pair_stems(MARKET_IDS[:3], 2), ext='png', seed=2)
    return root


def test_real_target_paths(tmp_path):
    write_images(tmp_path / 'real', DF_IDS, ext='jpg')
    stems = [f'{DF_IDS[2]}_{DF_IDS[3]}', f'{DF_IDS[5]}_{DF_IDS[0]}']
    gen = write_images(tmp_path / 'gen', stems, ext='jpg')
    assert [p.name for p in real_target_paths(gen, tmp_path / 'real')] == [f'{DF_IDS[3]}.jpg', f'{DF_IDS[0]}.jpg']
    write_images(tmp_path / 'gen', [f'{DF_IDS[0]}_unknown_1front'], ext='jpg')
    with pytest.raises(ValueError, match='unknown_1front'):
        lpips_pairs(tmp_path / 'gen', tmp_path / 'real')


@pytest.mark.parametrize('n1, n2, d', [(5, 7, 16), (3, 40, 16), (30, 25, 16)])
def test_frechet_distance_matches_torch_fidelity(n1, n2, d):
    # Both paths (low-rank identity for min(n) <= d, torch-fidelity's eigenvalue formula otherwise) against
    # torch-fidelity's own statistics and distance.
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    rng = np.random.default_rng(n1)
    f1 = rng.normal(size=(n1, d)) @ rng.normal(size=(d, d))
    f2 = rng.normal(loc=0.5, size=(n2, d))
    stats = [fid_features_to_statistics(torch.from_numpy(f)) for f in (f1, f2)]
    ref = fid_statistics_to_metric(stats[0], stats[1], verbose=False)['frechet_inception_distance']
    # (torch-fidelity's eigvals leave square roots of round-off, ~1e-7, on the zero eigenvalues.)
    assert frechet_distance(f1, f2) == pytest.approx(ref, rel=1e-7)
    assert frechet_distance(f1, f1) == pytest.approx(0.0, abs=1e-8)


def test_fid_uses_torch_fidelity_features(folders, tmp_path_factory):
    # torch-fidelity's own folder pipeline (PIL -> uint8 tensor -> extractor) gives the same pool3 features;
    # compute_fid itself runs in the fid_score.py script test.
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.utils import get_featuresdict_from_dataset

    extractor = TorchFidelityInception(fidelity_inception_weights(tmp_path_factory), features=('2048',))
    files = sorted((folders / 'gen').iterdir())
    ref = get_featuresdict_from_dataset(ImagesPathDataset([str(p) for p in files]), extractor.net, 4, False, True,
                                        False)['2048'].numpy()
    ours = extract_pool3(files, extractor, batch_size=1)
    assert ours.shape == (2, 2048)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_fid_checks_inputs(folders):
    with pytest.raises(ValueError, match="valid: \\['all', 'targets'\\]"):
        compute_fid(folders / 'gen', folders / 'real', real_subset='test')
    with pytest.raises(FileNotFoundError, match='weights-inception-2015-12-05-6726825d.pth'):
        compute_fid(folders / 'gen', folders / 'real', weights_path=folders / 'missing.pth')


def reference_lpips_model(alexnet_file, monkeypatch):
    """The package's standard construction (ImageNet AlexNet via torchvision, linear layers from the package),
    with torchvision's download replaced by the local random file."""
    import lpips
    import torchvision

    tv_alexnet = torchvision.models.alexnet

    def local_alexnet(pretrained=False, **kwargs):
        net = tv_alexnet(weights=None)
        if pretrained:
            net.load_state_dict(torch.load(alexnet_file, map_location='cpu', weights_only=True))
        return net

    monkeypatch.setattr(lpips.pretrained_networks.tv, 'alexnet', local_alexnet)
    return lpips.LPIPS(net='alex', version='0.1', verbose=False)


def test_lpips_matches_package_pipeline(folders, tmp_path_factory, monkeypatch):
    import lpips

    alex = alexnet_weights(tmp_path_factory)
    model = build_lpips(backbone_weights=alex)
    state = torch.load(alex, map_location='cpu', weights_only=True)
    torch.testing.assert_close(model.net.slice2._modules['3'].weight, state['features.3.weight'])
    torch.testing.assert_close(model.net.slice5._modules['10'].bias, state['features.10.bias'])
    got = compute_lpips(folders / 'gen', folders / 'real', model=model, batch_size=2)

    ref_model = reference_lpips_model(alex, monkeypatch)
    torch.testing.assert_close(model.lin3.model[1].weight, ref_model.lin3.model[1].weight)
    ref = []
    for gen, real in lpips_pairs(folders / 'gen', folders / 'real'):
        with torch.no_grad():
            ref.append(ref_model(lpips.im2tensor(lpips.load_image(str(gen))),
                                 lpips.im2tensor(lpips.load_image(str(real)))).item())
    assert got['lpips'] == pytest.approx(np.mean(ref), rel=1e-5)
    assert got['n_pairs'] == 2 and got['lpips'] > 0
    assert 'v0.1 alex' in got['protocol'] and 'N=2 pairs' in got['protocol']


def test_lpips_identical_images_is_zero(tmp_path, tmp_path_factory):
    write_images(tmp_path / 'real', MARKET_IDS[:2], ext='png', seed=3)
    (tmp_path / 'gen').mkdir()
    (tmp_path / 'gen' / f'{MARKET_IDS[0]}_{MARKET_IDS[1]}.png').write_bytes(
        (tmp_path / 'real' / f'{MARKET_IDS[1]}.png').read_bytes())
    got = compute_lpips(tmp_path / 'gen', tmp_path / 'real', backbone_weights=alexnet_weights(tmp_path_factory))
    assert got['lpips'] == pytest.approx(0.0, abs=1e-7)


def test_lpips_size_mismatch_and_missing_weights(tmp_path, tmp_path_factory, monkeypatch):
    write_images(tmp_path / 'real', MARKET_IDS[:2], size=(64, 32), ext='png')
    write_images(tmp_path / 'gen', [f'{MARKET_IDS[0]}_{MARKET_IDS[1]}'], size=(32, 32), ext='png')
    model = build_lpips(backbone_weights=alexnet_weights(tmp_path_factory))
    with pytest.raises(ValueError, match='equal size'):
        compute_lpips(tmp_path / 'gen', tmp_path / 'real', model=model)
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path / 'hub'))
    with pytest.raises(FileNotFoundError) as e:
        find_backbone_weights('alex')
    message = str(e.value)
    assert 'alexnet-owt-7be5be79.pth' in message
    assert 'https://download.pytorch.org/models/alexnet-owt-7be5be79.pth' in message
    assert str(tmp_path / 'hub' / 'checkpoints') in message
    with pytest.raises(ValueError, match='valid:'):
        find_backbone_weights('resnet')
