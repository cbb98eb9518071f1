"""Preprocessing of one case, this tree against another commit's, interleaved in one process.

    python benchmarks/bench_preprocess.py [--against HEAD~1] [--data DIR] [--reps 2]

The other commit's `brats_ssl/preprocess.py` (and its label check) is loaded from git beside the installed package.
Each case is read once, then preprocessed by the old and the new code in turn (in memory, at 1 mm), and the outputs
must be identical. The ratio new/old is reported with its spread over the pairs.
"""
from __future__ import annotations
import argparse, subprocess, sys, tempfile, time, types
from pathlib import Path
import numpy as np
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import default_data, report_pairs  # noqa: E402


def _old_module(rev: str) -> types.ModuleType:
    "The preprocess module of commit `rev`, with that commit's io module (its case finding and label checks), importable beside the package."
    root = Path(__file__).resolve().parents[1]
    show = lambda p: subprocess.run(['git', 'show', f'{rev}:{p}'], cwd=root, capture_output=True, text=True, check=True).stdout
    mods = {}
    for name in ('io', 'preprocess'):
        src = show(f'brats_ssl/{name}.py').replace('from .io import', f'from old_io_{rev} import').replace('from .', 'from brats_ssl.')
        mod = types.ModuleType(f'old_{name}_{rev}')
        mod.__file__ = str(Path(tempfile.gettempdir())/f'old_{name}.py')
        sys.modules[mod.__name__] = mod        # dataclasses look their module up there
        exec(compile(src, mod.__file__, 'exec'), mod.__dict__)
        mods[name] = mod
    return mods['preprocess']


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--against', default='HEAD~1'); ap.add_argument('--data', type=Path, default=default_data())
    ap.add_argument('--reps', type=int, default=2)
    a = ap.parse_args(argv)
    from brats_ssl.io import find_cases, read_case
    import brats_ssl.preprocess as new
    old = _old_module(a.against)
    pairs = []
    for _ in range(a.reps):
        for c in find_cases(a.data):
            f, s = read_case(c)
            t0 = time.perf_counter(); po = old.preprocess_case(f, s); t1 = time.perf_counter(); pn = new.preprocess_case(f, s); t2 = time.perf_counter()
            for x, y in ((po.image, pn.image), (po.label, pn.label)):
                assert np.array_equal(sitk.GetArrayViewFromImage(x), sitk.GetArrayViewFromImage(y)), c.id
            pairs.append((t1 - t0, t2 - t1))
    report_pairs(pairs, f'{a.against}', 'this tree', 'preprocess_case of a real case in memory, 1 mm')
    return 0


if __name__ == '__main__':
    sys.exit(main())
