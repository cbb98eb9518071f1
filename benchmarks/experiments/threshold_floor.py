"""The no-learning floor at its strongest: the FLAIR threshold with its z, openings and largest-component choice tuned
on each fold's non-test patients, scored on the fold's test patients and compared, paired, with the networks.

    python benchmarks/experiments/threshold_floor.py --data ../shared/data/brats18 [--out benchmarks/experiments/threshold_floor]
    python benchmarks/experiments/threshold_floor.py --data ../shared/data/brats18 --site    # each site held out whole

Folds: those of `reproduce --budget cpu-3mm` (`cv_splits`, 3 folds, seed 0). Two tunings are reported: on the fold's
labelled and validation patients of the cpu-3mm split (5 + 2: the labels the networks of that budget had), and on all
14-15 non-test patients of the fold (the labels the FLAIR model's recipe had). Writes `<out>/per_case.csv` (one row per
patient and tuning) and `<out>/settings.csv` (the setting each fold chose), and prints the comparisons with the
networks' per-patient rows kept in benchmarks/experiments/ablation/base_per_case.csv (cpu-3mm, seed 0) and
benchmarks/experiments/flair_model/fold*_per_case.csv (the FLAIR model's recipe, where present).
"""
from __future__ import annotations
import argparse, csv, sys, tempfile
from pathlib import Path
import numpy as np

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    from brats_ssl.io import default_data_dir, find_cases
    from brats_ssl.data import cv_splits
    from brats_ssl.evaluate import threshold_scan, threshold_predictions, evaluate_predictions, write_rows, read_rows
    from brats_ssl.pipeline import BUDGETS, THRESHOLD_TUNING
    from brats_ssl.stats import compare_methods, comparison_table
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--data', type=Path, default=default_data_dir()); ap.add_argument('--out', type=Path, default=HERE/'threshold_floor')
    ap.add_argument('--site', action='store_true', help="folds by site (cv_splits(..., 'site')): rows in per_case_site.csv, settings_site.csv")
    a = ap.parse_args(argv)
    cases = find_cases(a.data)
    ids = sorted(c.id for c in cases if c.labelled)
    b = BUDGETS['cpu-3mm']
    splits = cv_splits(ids, 'site' if a.site else b['folds'], b['labelled'], b['val'], seed=0)
    scan = threshold_scan(a.data, ids=ids, progress=True, **THRESHOLD_TUNING)
    rows, chosen = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k, s in enumerate(splits):
            test = [c for c in cases if c.id in set(s['test'])]
            for tuning, tune_ids in (('split', s['labelled'] + s['val']), ('nontest', [i for i in ids if i not in set(s['test'])])):
                tune = [i for i, c in enumerate(scan['cases']) if c in set(tune_ids)]
                dice = scan['dice'][tune].mean(0)
                best = scan['settings'][int(np.argmax(dice))]
                chosen.append(dict(fold=k, tuning=tuning, **best, tuned_on=len(tune), tune_dice=float(dice.max())))
                d = Path(tmp)/f"{k}_{tuning}"
                threshold_predictions(a.data, d, **best, cases=test, progress=False)
                rows += [dict(method=f"threshold_{tuning}", fold=k, **r) for r in evaluate_predictions(d, a.data, progress=False, ids=s['test'])]
    a.out.mkdir(parents=True, exist_ok=True)
    suffix = '_site' if a.site else ''
    write_rows(rows, a.out/f'per_case{suffix}.csv'); write_rows(chosen, a.out/f'settings{suffix}.csv')
    for c in chosen: print(c)
    if a.site:                                                   # each site held out whole: the floor tuned on the others
        from brats_ssl.data import case_site
        for k, s in enumerate(splits):
            rs = [r for r in rows if r['fold'] == k and r['method'] == 'threshold_nontest']
            print(f"{case_site(s['test'][0]):7s} {len(rs):2d} patients  Dice {np.mean([r['dice'] for r in rs]):.3f}  HD95 {np.mean([r['hd95'] for r in rs]):6.2f}")
        return 0
    base = [r for r in read_rows(HERE/'ablation'/'base_per_case.csv') if r['seed'] in (0, '', None)]
    by = {'threshold, tuned as cpu-3mm (5+2)': [r for r in rows if r['method'] == 'threshold_split'],
          'threshold, tuned on all non-test': [r for r in rows if r['method'] == 'threshold_nontest'],
          'package threshold (1 opening)': [r for r in base if r['method'] == 'threshold']}
    for m, t in (('unet', 'UNet3D'), ('mt', 'Mean Teacher'), ('uamt', 'UAMT')): by[t + ' (cpu-3mm)'] = [r for r in base if r['method'] == m]
    fm = [r for f in sorted((HERE/'flair_model').glob('fold*_per_case.csv')) for r in read_rows(f) if r['method'] == 'unet']
    if fm: by[f"FLAIR model recipe ({len(fm)} patients)"] = fm
    for name, rs in by.items():
        print(f"{name:40s} n {len(rs):2d}  Dice {np.mean([r['dice'] for r in rs]):.3f}  HD95 {np.mean([r['hd95'] for r in rs]):6.2f}")
    for metric in ('dice', 'hd95'):
        print(comparison_table(compare_methods({k: v for k, v in by.items() if len(v) == 22 or k.startswith('threshold, tuned on all')}, metric)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
