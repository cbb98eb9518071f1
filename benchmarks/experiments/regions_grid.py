"""The grid of the four-modality, three-region task, chosen on validation patients: the `cpu-3mm` budget's UNet3D
trained at 3 mm and at 2 mm (same patches, iterations and folds), each fold's checkpoint then run on that fold's
validation patients and scored per region on their original 1 mm grid, so that the two grids are compared on the same
voxels. The grid with the higher mean validation Dice over WT, TC and ET is the choice; the folds' test patients are
reported beside it, not used for it.

    python benchmarks/experiments/regions_grid.py --data ../shared/data/brats18 --run3 RUN3 --out /tmp/regions_grid

RUN3 is a finished `brats-ssl reproduce --data DATA --budget cpu-3mm --modalities flair t1 t1ce t2 --regions wt tc et
--out RUN3` (its UNet3D runs are reused); the 2 mm runs are trained into OUT/2mm (UNet3D only: about 20 minutes on
2 cores) and resume when rerun. Writes OUT/val_per_case.csv and OUT/test_per_case.csv (rows per grid, fold and
patient) and keeps copies in benchmarks/experiments/regions/.
"""
from __future__ import annotations
import argparse, json, shutil, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))      # benchmarks/, for common.py
from common import default_data  # noqa: E402

MODALITIES, REGIONS = ('flair', 't1', 't1ce', 't2'), ('wt', 'tc', 'et')


def grid_rows(data: Path, runs: dict, out: Path) -> tuple[list, list]:
    """Validation and test rows of each grid's UNet3D: {grid: reproduce folder} -> ([val rows], [test rows])."""
    from brats_ssl.io import find_cases
    from brats_ssl.pipeline import predict_dataset
    from brats_ssl.evaluate import evaluate_predictions, read_rows
    cases = find_cases(data)
    val, test = [], []
    for grid, run in runs.items():
        for fdir in sorted(run.glob('fold[0-9]')):
            k = int(fdir.name[4:])
            split = json.loads((fdir/'split.json').read_text())
            pdir = out/'val_predictions'/grid/fdir.name
            predict_dataset(fdir/'runs'/'unet_seed0'/'checkpoint_best.pt', [c for c in cases if c.id in split['val']], pdir,
                            progress=False, mirror=True)
            val += [dict(grid=grid, fold=k, **r) for r in evaluate_predictions(pdir, data, progress=False, ids=split['val'], regions=REGIONS)]
        test += [dict(grid=grid, **{k: v for k, v in r.items() if k not in ('seed', 'method')})
                 for r in read_rows(run/'per_case.csv') if r['method'] == 'unet']
    return val, test


def report(val: list, test: list) -> str:
    "The choice and the figures behind it, as Markdown."
    import numpy as np
    from brats_ssl.stats import paired_comparison
    from brats_ssl.evaluate import region_key
    grids = list(dict.fromkeys(r['grid'] for r in val))          # the budget's grid first
    key = lambda reg: region_key('dice', reg)
    mean = lambda rows, g: np.mean([np.mean([r[key(x)] for x in REGIONS]) for r in rows if r['grid'] == g])
    lines = ['| grid | validation Dice WT / TC / ET (mean) | test Dice WT / TC / ET (mean) | n val / test |', '|:--|:--|:--|:--|']
    for g in grids:
        v, t = [r for r in val if r['grid'] == g], [r for r in test if r['grid'] == g]
        f = lambda rs: ' / '.join(f"{np.mean([r[key(x)] for r in rs]):.3f}" for x in REGIONS)
        lines.append(f"| {g} | {f(v)} ({mean(val, g):.3f}) | {f(t)} ({mean(test, g):.3f}) | {len(v)} / {len(t)} |")
    best = max(grids, key=lambda g: mean(val, g))
    text = '\n'.join(lines) + f"\n\nChosen on the validation patients: {best}.\n"
    if len(grids) == 2:
        a, b = ([r for r in test if r['grid'] == g] for g in grids)
        text += '\nTest patients, paired (' + f"{grids[1]} - {grids[0]}" + '): ' + '; '.join(
            f"{x.upper()} {c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}] p {c['p_value']:.3f}"
            for x in REGIONS for c in [paired_comparison(a, b, key(x))]) + '\n'
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--data', type=Path, default=default_data()); ap.add_argument('--run3', type=Path, required=True)
    ap.add_argument('--out', type=Path, default=Path('/tmp/regions_grid'))
    a = ap.parse_args()
    from brats_ssl.pipeline import reproduce
    from brats_ssl.evaluate import write_rows
    reproduce(a.out/'2mm', data=a.data, budget='cpu-3mm', methods=('unet',), spacing=2.0, modalities=MODALITIES, regions=REGIONS,
              progress=False)
    val, test = grid_rows(a.data, {'3 mm': a.run3, '2 mm': a.out/'2mm'}, a.out)
    keep = Path(__file__).resolve().parent/'regions'
    for name, rows in (('val_per_case.csv', val), ('test_per_case.csv', test)):
        write_rows(rows, a.out/name); shutil.copy(a.out/name, keep/f"grid_{name}")
    text = report(val, test)
    (keep/'grid.md').write_text(text); print(text)


if __name__ == '__main__':
    main()
