"""The quick-start job runs every step of the pipeline (tiny profile)."""
import json

import demo


def test_demo_runs_the_whole_pipeline(tmp_path, capsys):
    result = demo.main(['--tiny', '--checkpoints_dir', str(tmp_path / 'ckpt'), '--data_root',
                        str(tmp_path / 'demo'), '--num_workers', '0'])
    out = capsys.readouterr().out
    for step in ('generate the synthetic demo dataset', 'train the flow regression module',
                 'without pixel warping (ablation 4)', 'fine-tune the pixel-warping network', 'test the full model'):
        assert step in out
    assert '--loss_weight_content 0' in out  # no VGG19 file here: the demo says so and trains without it
    assert (tmp_path / 'demo' / 'manifest.json').is_file()
    for exp in ('FlowReg_demo', 'PoseTransfer_demo_4', 'PoseTransfer_demo_5'):
        assert (tmp_path / 'ckpt' / exp / 'best_checkpoint.pth').is_file(), exp
    saved = json.loads(open(result['json']).read())
    assert 'copy_source_SSIM' in saved['baselines'] and 'SSIM' in saved['metrics']
    assert f"metrics JSON: {result['json']}" in out
