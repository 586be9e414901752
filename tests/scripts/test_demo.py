"""The quick-start job runs every step of the pipeline (tiny profile), with or without VGG19 weights.

The torch hub directory is redirected to an empty temporary folder in every test, so the outcome never depends on
whether the machine running the tests has ``vgg19-dcbb9e9d.pth`` in its own cache.
"""
import json
import re

import pytest
import torch
from PIL import Image

import demo
from models.losses import VGG19_WEIGHTS_FILE, random_vgg19_features


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    """An empty torch hub directory in place of the user's (``~/.cache/torch/hub`` or ``$TORCH_HOME/hub``)."""
    hub = tmp_path / 'hub'
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(hub))
    return hub


def write_random_vgg19(path):
    """A torchvision-format VGG19 file (``features.*`` keys) with random weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f'features.{k}': v for k, v in random_vgg19_features(0).state_dict().items()}, path)
    return path


def test_demo_runs_the_whole_pipeline_without_vgg(tmp_path, empty_hub, capsys):
    result = demo.main(['--tiny', '--checkpoints_dir', str(tmp_path / 'ckpt'), '--data_root',
                        str(tmp_path / 'demo'), '--num_workers', '0'])
    out = capsys.readouterr().out
    for step in ('generate the synthetic demo dataset', 'train the flow regression module',
                 'without pixel warping (ablation 4)', 'fine-tune the pixel-warping network', 'test the full model'):
        assert step in out
    # No VGG19 file in the (empty) hub cache and no --vgg_weights: the demo says so and trains without it.
    assert 'VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) not found' in out and '--loss_weight_content 0' in out
    for exp in ('PoseTransfer_demo_4', 'PoseTransfer_demo_5'):
        saved = json.loads((tmp_path / 'ckpt' / exp / 'train_opt.json').read_text())
        assert saved['loss_weight_content'] == 0 and saved['vgg_weights'] is None, exp
        assert 'loss_content' not in (tmp_path / 'ckpt' / exp / 'train_log.txt').read_text(), exp
    assert (tmp_path / 'demo' / 'manifest.json').is_file()
    for exp in ('FlowReg_demo', 'PoseTransfer_demo_4', 'PoseTransfer_demo_5'):
        assert (tmp_path / 'ckpt' / exp / 'best_checkpoint.pth').is_file(), exp
    saved = json.loads(open(result['json']).read())
    assert 'copy_source_SSIM' in saved['baselines'] and 'SSIM' in saved['metrics']
    assert f"metrics JSON: {result['json']}" in out
    results = tmp_path / 'ckpt' / 'PoseTransfer_demo_5' / 'test_test_best'
    assert result['results_dir'] == str(results) and f'results:      {results}' in out
    assert result['json'] == str(results / 'metrics.json') and any((results / 'images').glob('*.jpg'))
    # Both modules are tested; the closing summary reads the person-region metrics against both references.
    assert 'test the flow regression module on the demo test split' in out
    assert result['flow_metrics']['zero_flow_EPE'] > 0
    assert re.search(r'person SSIM: the model closes -?\d+% of the gap from copy-source to the ground-truth-flow '
                     r'warp', out), out
    assert re.search(r'flow module: EPE \d+\.\d{3} = \d+% of the zero-flow EPE', out), out
    for name in ('full model:', 'copy source:', 'ground-truth flow warp:'):
        assert name in out
    # The README picture: one row per pair (2 in the tiny profile), five panels per row (128x64 images, 2 px padding).
    picture = tmp_path / 'ckpt' / 'PoseTransfer_demo_5' / 'quickstart.jpg'
    assert result['picture'] == str(picture) and f'picture:      {picture}' in out
    assert Image.open(picture).size == (5 * 66 + 2, 2 * 130 + 2)
    # The time of each step, and their total.
    assert list(result['stage_seconds']) == ['generate the dataset', 'train the flow module', 'test the flow module',
                                             'train the generator (4)', 'fine-tune pixel warping (5)',
                                             'test the full model', 'picture']
    for stage in [*result['stage_seconds'], 'total']:
        assert re.search(rf'  {re.escape(stage)} +\d+\.\d s', out), stage


@pytest.mark.slow
def test_demo_runs_again_in_the_same_folders_with_the_same_results(tmp_path, empty_hub, capsys):
    """A second quick start retrains the three models in place (it used to stop: 'already holds checkpoints')."""
    args = ['--tiny', '--checkpoints_dir', str(tmp_path / 'ckpt'), '--data_root', str(tmp_path / 'demo'),
            '--num_workers', '0']
    first = demo.main(args)
    flow_weights = tmp_path / 'ckpt' / 'FlowReg_demo' / 'best_net_netF.pth'
    first_flow = torch.load(flow_weights, map_location='cpu', weights_only=True)
    capsys.readouterr()
    second = demo.main(args)
    out = capsys.readouterr().out
    assert out.count('--overwrite') >= 3  # the three training commands as printed
    untimed = {k: v for k, v in second['metrics'].items() if k != 'sec_per_image'}
    assert untimed == {k: first['metrics'][k] for k in untimed} and {'SSIM', 'person_SSIM'} <= set(untimed)
    assert second['flow_metrics'] == first['flow_metrics']
    again = torch.load(flow_weights, map_location='cpu', weights_only=True)
    assert again.keys() == first_flow.keys() and all(torch.equal(again[k], first_flow[k]) for k in again)


@pytest.mark.parametrize('where', ['--vgg_weights', 'hub cache'])
def test_demo_turns_the_content_loss_on_when_vgg_weights_are_found(where, tmp_path, empty_hub, monkeypatch, capsys):
    """Which command lines the demo runs when a (random-weight) VGG19 file is found; the steps are recorded, not
    run (the end-to-end run is the test above; training with the content loss is tested in test_pose_pipeline)."""
    if where == '--vgg_weights':
        vgg = write_random_vgg19(tmp_path / 'elsewhere' / VGG19_WEIGHTS_FILE)
        extra = ['--vgg_weights', str(vgg)]
    else:
        write_random_vgg19(empty_hub / 'checkpoints' / VGG19_WEIGHTS_FILE)
        extra = []
    calls = []
    fake_result = {'metrics': {'SSIM': 0.5, 'mask_SSIM': 0.5, 'PSNR': 10.0},
                   'baselines': {'copy_source_SSIM': 0.4, 'copy_source_mask_SSIM': 0.4, 'copy_source_PSNR': 9.0},
                   'results_dir': 'r', 'json': 'r/metrics.json', 'visual_grid': 'r/vis.jpg', 'output_dir': 'r/images'}

    fake_flow = {'metrics': {'EPE': 1.0, 'zero_flow_EPE': 4.0}}
    fake_result['metrics'].update(person_SSIM=0.6, person_L1=30.0)
    fake_result['baselines'].update(copy_source_person_SSIM=0.4, copy_source_person_L1=80.0,
                                    gt_flow_warp_person_SSIM=0.8, gt_flow_warp_person_L1=20.0)

    def record(step, module, argv):
        calls.append((module.__name__, argv))
        return {demo.test_pose_transfer: fake_result, demo.test_flow_regression_module: fake_flow}.get(module, 0)

    monkeypatch.setattr(demo, 'run', record)
    monkeypatch.setattr(demo, 'write_picture', lambda argv, n: tmp_path / 'picture.jpg')
    demo.main(['--tiny', '--checkpoints_dir', str(tmp_path / 'ckpt'), '--data_root', str(tmp_path / 'demo'),
               '--num_workers', '0', *extra])
    out = capsys.readouterr().out
    assert 'VGG19 ImageNet weights found: the perceptual (content) loss is on' in out
    # The closing summary's arithmetic: (0.6 - 0.4) / (0.8 - 0.4) of the gap; EPE 1 of 4.
    assert 'the model closes 50% of the gap' in out and 'EPE 1.000 = 25% of the zero-flow EPE 4.000' in out
    pose_runs = [argv for name, argv in calls if name == 'train_pose_transfer_model']
    assert len(pose_runs) == 2
    test_runs = [argv for name, argv in calls if name == 'test_pose_transfer']
    # the demo retrains its models, so its test replaces the results of an earlier demo run
    assert len(test_runs) == 1 and '--overwrite' in test_runs[0]
    for argv in pose_runs:
        assert '--loss_weight_content' not in argv  # the option's default (1) applies
        if extra:
            assert argv[argv.index('--vgg_weights') + 1] == extra[1]
        else:
            assert '--vgg_weights' not in argv  # found by the model in the same hub cache


def test_profiles_set_every_stage_and_long_trains_longer(capsys):
    """Every profile gives every stage's settings; 'long' spends more iterations than 'default' on each stage;
    an unknown profile is an argparse error naming the choices."""
    keys = set(demo.PROFILES['default'])
    assert all(set(p) == keys for p in demo.PROFILES.values())
    long, default = demo.PROFILES['long'], demo.PROFILES['default']
    for stage in ('flow', 'pose', 'full'):
        steps = f'{stage}_steps'
        epochs = f'{stage}_epochs'
        assert long[epochs] * long[steps] > default[epochs] * default[steps], stage
    with pytest.raises(SystemExit):
        demo.main(['--profile', 'huge'])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
