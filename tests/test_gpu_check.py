"""benchmarks/gpu_check.py in its tiny setting on the CPU: every part runs and the loss falls.

What the check is for, the GPU's prediction compared with the CPU's, cannot be tested here: without a GPU the script
compares the CPU with itself, so its "0 of N voxels differ" line only shows that the comparison runs. The check that
matters is `python benchmarks/gpu_check.py` on a CUDA machine."""
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_tiny_on_cpu(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT/'benchmarks'/'gpu_check.py'), '--tiny', '--device', 'cpu', '--data', str(tmp_path/'none')],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [l for l in p.stdout.splitlines() if l.startswith('| ') and not l.startswith('| what')]
    assert [r.split(' | ')[0] for r in rows[:3]] == ['| train step unet 16^3, 2+2 patches', '| train step mt 16^3, 2+2 patches',
                                                     '| train step uamt 16^3, 2+2 patches']
    assert rows[3].startswith('| predict Phantom_000_flair.nii.gz (80x80x52)'), rows[3]
    assert rows[4].rstrip(' |').endswith('ok') and rows[5].rstrip(' |').endswith('ok'), rows[4:]
    assert ' 0 of ' in rows[5]                     # the CPU against itself (no GPU here): the very same mask, trivially
