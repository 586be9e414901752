"""benchmarks/person_ssim_sensitivity.py on the small demo dataset."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))
import person_ssim_sensitivity  # noqa: E402

from tests.models.helpers import write_flow_experiment  # noqa: E402


def test_person_ssim_falls_with_misplacement_and_blur(demo_root, tmp_path, single_thread_torch, capsys):
    write_flow_experiment(tmp_path / 'FlowReg_random', weight_std=0.1, image_size=[128, 64], joint_mode='binary',
                          joint_radius=4)
    result = person_ssim_sensitivity.main(['--data_root', str(demo_root), '--flow_module', 'FlowReg_random',
                                           '--checkpoints_dir', str(tmp_path)])
    shifted = [result[f'target moved {d} px'] for d in person_ssim_sensitivity.SHIFTS]
    blurred = [result[f'target blurred, sigma {s} px'] for s in person_ssim_sensitivity.SIGMAS]
    warped = [result['ground-truth-flow warp']] + [result[f'ground-truth-flow warp, flow +{d} px in x']
                                                   for d in person_ssim_sensitivity.SHIFTS]
    # a perfect rendering scores 1; every misplacement or blur costs, the more the larger it is
    assert all(a > b for a, b in zip([1.0, *shifted], shifted))
    assert all(a > b for a, b in zip([1.0, *blurred], blurred))
    assert warped[0] > warped[2] and warped[0] > result['copy-source']
    assert 'FlowReg_random predicted-flow warp' in result
    out = capsys.readouterr().out
    assert 'target of the quick start' in out and 'target moved 2 px' in out
