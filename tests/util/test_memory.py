import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Like a dataset item: per round one large array and several smaller ones (more in total than glibc's default
# trim threshold, twice the largest freed block), touched and freed; prints the page faults of the last 30 rounds.
_PROGRAM = '''
import resource, sys
import numpy as np
from util.memory import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == '1' else None
for i in range(40):
    if i == 10:
        start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    item = [np.ones(4 << 20, np.uint8)] + [np.ones(1 << 20, np.uint8) for _ in range(10)]
    del item
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
'''


def _run(retain: bool) -> tuple[str, int]:
    out = subprocess.run([sys.executable, '-c', _PROGRAM, str(int(retain))], cwd=REPO, check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_retain_freed_memory_stops_page_faults_on_reallocation():
    applied, faults_retained = _run(True)
    _, faults_default = _run(False)
    assert applied == 'True'
    assert faults_default > 30 * 2000  # each round faults most of its ~3600 pages back in
    assert faults_retained < 200
