"""Benchmark brats_ssl.metrics.segmentation_metrics against medpy.metric.binary on the real BraTS cases.

For each case: ref = whole tumour (label > 0); pred = a deterministic, realistic imperfect prediction
(ref dilated by 2 voxels, shifted by (1, 2, -1) voxels, a ball of radius 6 removed inside it, a false-positive
ball of radius 3 added in the other hemisphere). Both are scored by medpy (dc, |ravd|, hd95, asd on the full
volume, with the voxel spacing) and by segmentation_metrics, in the same run; the values must agree.

    python benchmarks/bench_metrics.py [--data DIR] [--cases N] [--json PATH]

DIR defaults to $BRATS_DATA, else ../shared/data/brats18 relative to the repository root.
"""
from __future__ import annotations
import argparse, os, platform, sys, time
from pathlib import Path
import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_dilation
from medpy.metric import binary as mb
import scipy, medpy

from brats_ssl.io import BratsError, find_cases, read_case, write_json
from brats_ssl.metrics import segmentation_metrics

KEYS = ('dice', 'ravd', 'hd95', 'asd')


sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_data  # noqa: E402


def _ball(shape, centre, radius) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius ** 2


def _shift(mask: np.ndarray, offset) -> np.ndarray:
    "`mask` moved by `offset` voxels, zero-filled (nothing wraps around)."
    out = np.zeros_like(mask)
    src = tuple(slice(max(-o, 0), n - max(o, 0)) for o, n in zip(offset, mask.shape))
    dst = tuple(slice(max(o, 0), n - max(-o, 0)) for o, n in zip(offset, mask.shape))
    out[dst] = mask[src]
    return out


def make_prediction(ref: np.ndarray) -> np.ndarray:
    "A deterministic imperfect prediction of `ref` (boolean [z, y, x]): too big, shifted, with a hole and a false positive."
    pred = _shift(binary_dilation(ref, iterations=2), (1, 2, -1))
    idx = np.argwhere(ref)
    if len(idx):
        centre = idx[len(idx) // 2]                      # the median foreground voxel in C order
        pred &= ~_ball(ref.shape, centre, 6)             # a missed blob
        mirrored = (centre[0], centre[1], ref.shape[2] - 1 - centre[2])   # the other hemisphere (x flipped)
        pred |= _ball(ref.shape, mirrored, 3)            # a false positive
    return pred


def medpy_metrics(pred, ref, spacing) -> dict:
    return {'dice': mb.dc(pred, ref), 'ravd': abs(mb.ravd(pred, ref)),
            'hd95': mb.hd95(pred, ref, voxelspacing=spacing), 'asd': mb.asd(pred, ref, voxelspacing=spacing)}


def machine() -> dict:
    return {'platform': platform.platform(), 'processor': platform.processor() or platform.machine(),
            'cpu_count': os.cpu_count(), 'python': platform.python_version(), 'numpy': np.__version__,
            'scipy': scipy.__version__, 'medpy': getattr(medpy, '__version__', '?')}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=None, help='BraTS folder (default: $BRATS_DATA or ../shared/data/brats18)')
    ap.add_argument('--cases', type=int, default=None, help='use only the first N labelled cases')
    ap.add_argument('--json', type=Path, default=None, help='also write the results as JSON to this path')
    a = ap.parse_args(argv)
    root = a.data or default_data()
    if not root.is_dir():
        print(f"bench_metrics: BraTS data not found at {root}; pass --data DIR or set BRATS_DATA", file=sys.stderr)
        return 2
    try:
        cases = [c for c in find_cases(root) if c.labelled][:a.cases]
    except BratsError as e:
        print(f"bench_metrics: {e}", file=sys.stderr); return 2
    if not cases:
        print(f"bench_metrics: no labelled case under {root}", file=sys.stderr); return 2

    m = machine()
    print(f"machine: {m['platform']}, {m['processor']}, {m['cpu_count']} CPUs; numpy {m['numpy']}, scipy {m['scipy']}, medpy {m['medpy']}")
    print(f"data: {root} ({len(cases)} cases)\n")
    head = f"{'case':<22}{'shape':>15}{'dice':>8}{'ravd':>8}{'hd95':>8}{'asd':>8}{'medpy s':>9}{'ours s':>8}{'x':>6}{'max|diff|':>11}"
    print(head); print('-' * len(head))
    rows, t_medpy, t_ours, worst = [], 0.0, 0.0, 0.0
    for case in cases:
        _, seg = read_case(case)
        ref = sitk.GetArrayFromImage(seg) > 0
        spacing = tuple(seg.GetSpacing()[::-1])          # array order [z, y, x]
        pred = make_prediction(ref)
        t0 = time.perf_counter(); theirs = medpy_metrics(pred, ref, spacing); tm = time.perf_counter() - t0
        t0 = time.perf_counter(); ours = segmentation_metrics(pred, ref, spacing); to = time.perf_counter() - t0
        diff = max(abs(ours[k] - theirs[k]) for k in KEYS)
        t_medpy += tm; t_ours += to; worst = max(worst, diff)
        print(f"{case.id:<22}{'x'.join(map(str, ref.shape)):>15}" + ''.join(f"{ours[k]:>8.3f}" for k in KEYS)
              + f"{tm:>9.2f}{to:>8.3f}{tm / to:>6.0f}{diff:>11.1e}")
        rows.append({'case': case.id, 'shape': list(ref.shape), 'spacing': list(spacing), 'ref_voxels': int(ref.sum()),
                     'pred_voxels': int(pred.sum()), 'ours': ours, 'medpy': {k: float(v) for k, v in theirs.items()},
                     'seconds_medpy': tm, 'seconds_ours': to, 'max_abs_diff': diff})
    print('-' * len(head))
    print(f"total: medpy {t_medpy:.2f} s, ours {t_ours:.2f} s, speed-up {t_medpy / t_ours:.1f}x "
          f"(per case: {t_medpy / len(cases):.2f} s vs {t_ours / len(cases):.3f} s); largest |difference| {worst:.1e}")
    if a.json:
        write_json({'machine': m, 'data': str(root), 'cases': rows, 'total_seconds_medpy': t_medpy,
                    'total_seconds_ours': t_ours, 'speedup': t_medpy / t_ours, 'max_abs_diff': worst}, a.json)
        print(f"wrote {a.json}")
    if worst > 1e-9:
        print(f"bench_metrics: values differ from medpy by {worst:.1e} (> 1e-9)", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
