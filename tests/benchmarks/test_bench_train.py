"""benchmarks/bench_train.py runs every workload kind end to end (a tiny setting) and writes its table."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))
import bench_train  # noqa: E402


@pytest.mark.slow
def test_bench_train_measures_each_workload_and_variant(tmp_path, single_thread_torch):
    out = tmp_path / 'bench.json'
    result = bench_train.main(['--scales', 'market', '--workloads', 'flow_step', 'gen_step_pixwarp', 'test_forward',
                               '--variants', 'fp32', 'channels_last', '--iters', '1', '--batch_size', '2',
                               '--loader_batches', '1', '--work_dir', str(tmp_path / 'work'), '--json', str(out)])
    saved = json.loads(out.read_text())
    assert saved['rows'] == json.loads(json.dumps(result['rows']))
    rows = {(r['workload'], r['variant']): r for r in saved['rows']}
    assert set(rows) == {(w, v) for w in ('flow_step', 'gen_step_pixwarp', 'test_forward')
                         for v in ('fp32', 'channels_last')} | {('loader', '-')}
    for (workload, variant), row in rows.items():
        assert row['images_per_s'] > 0
        if variant == 'fp32':
            assert row['speedup_vs_fp32'] == 1.0 and row['max_abs_diff_vs_fp32'] == 0.0
        elif variant == 'channels_last':  # another memory layout: the same outputs up to rounding
            assert 0 <= row['max_abs_diff_vs_fp32'] < 0.5, (workload, row)
