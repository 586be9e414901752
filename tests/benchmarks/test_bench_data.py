"""benchmarks/bench_data.py with --maps_on_device: compact items, the maps drawn from them equal the reference's."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_data_maps_on_device_matches_the_committed_loader(tmp_path):
    """The working tree with --maps_on_device against HEAD's classic items (every clone has HEAD): the sample
    hashes, maps drawn by draw_device_maps included, must agree in every case."""
    out = tmp_path / 'bench.json'
    run = subprocess.run([sys.executable, str(REPO / 'benchmarks' / 'bench_data.py'), '--compare-reference', 'HEAD',
                          '--sizes', '128x64', '--n_samples', '8', '--repeats', '1', '--maps_on_device',
                          '--json', str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result['maps_on_device'] is True and len(result['cases']) == 4
    for case in result['cases']:
        assert case['identical'], case
        assert case['ms_per_sample']['cpu']['new'] > 0 and case['device_maps_ms_per_sample']['cpu'] > 0
    assert 'samples identical in 4 of 4 cases' in run.stdout
