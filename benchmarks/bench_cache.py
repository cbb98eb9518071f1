"""The preprocessing cache on disk: size, write time and load time of each encoding, on the real cases.

    python benchmarks/bench_cache.py [--data DIR] [--reps 3]

Every case is preprocessed once (at 1 mm, in memory); its image and label arrays are then written and read back in
each encoding in turn, `--reps` times, interleaved so that all encodings see the same machine: `.npy` (the cache's
earlier format), gzip (`np.savez_compressed`, about what a `.nii.gz` costs) and the package's Blosc LZ4 frames
(`save_array` / `load_array`). Each read must give the arrays back bit for bit. Prints the medians per case.
"""
from __future__ import annotations
import argparse, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_data  # noqa: E402


def _encodings():
    from brats_ssl.preprocess import save_array, load_array
    def npz_load(f, x):
        with np.load(f) as z: return z['a']
    return {'npy': (lambda f, a: np.save(f, a), lambda f, a: np.load(f), '.npy'),
            'gzip (.npz)': (lambda f, a: np.savez_compressed(f, a=a), npz_load, '.npz'),
            'blosc-lz4 (the cache)': (save_array, lambda f, a: load_array(f, a.shape, a.dtype), '.blosc')}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data()); ap.add_argument('--reps', type=int, default=3)
    a = ap.parse_args(argv)
    from brats_ssl.io import find_cases, read_case
    from brats_ssl.preprocess import preprocess_case
    enc, tmp = _encodings(), Path(tempfile.mkdtemp())
    res = {k: dict(mb=[], write=[], load=[]) for k in enc}
    cases = find_cases(a.data)
    source_mb = [(c.flair.stat().st_size + c.seg.stat().st_size) / 2**20 for c in cases]
    for c in cases:
        p = preprocess_case(*read_case(c))
        arrays = [sitk.GetArrayFromImage(p.image), sitk.GetArrayFromImage(p.label)]
        w, r = {k: [] for k in enc}, {k: [] for k in enc}
        for _ in range(a.reps):
            for k, (save, load, suffix) in enc.items():
                files = [tmp/f"{c.id}_{i}{suffix}" for i in range(2)]
                t = time.perf_counter()
                for f, x in zip(files, arrays): save(f, x)
                w[k].append(time.perf_counter() - t)
                t = time.perf_counter(); back = [load(f, x) for f, x in zip(files, arrays)]; r[k].append(time.perf_counter() - t)
                assert all(np.array_equal(b.view(np.uint8), x.view(np.uint8)) for b, x in zip(back, arrays)), (c.id, k)
                if len(w[k]) == 1: res[k]['mb'].append(sum(f.stat().st_size for f in files) / 2**20)   # the size once
                for f in files: f.unlink()
        for k in enc: res[k]['write'].append(statistics.median(w[k])); res[k]['load'].append(statistics.median(r[k]))
    print(f"{len(cases)} real cases at 1 mm (image float32 + label uint8 on the brain box), medians over cases of the median of {a.reps}; "
          f"source .nii.gz (FLAIR + label) {statistics.median(source_mb):.1f} MB per case")
    print("| encoding | MB per case (range) | write | load |\n|:--|--:|--:|--:|")
    for k, v in res.items():
        print(f"| {k} | {statistics.median(v['mb']):.1f} ({min(v['mb']):.1f}-{max(v['mb']):.1f}) | "
              f"{statistics.median(v['write']) * 1000:.0f} ms | {statistics.median(v['load']) * 1000:.0f} ms |")
    return 0


if __name__ == '__main__':
    sys.exit(main())
