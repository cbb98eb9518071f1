"""The regions recipe trained 4000 iterations against the shipped 2000, on the folds both have run: validation (the last
checkpoint's mean Dice of the three regions, which no choice has touched) and test patients (paired, per region).

    python benchmarks/experiments/regions_model/longer/compare.py
"""
import csv
from pathlib import Path
from brats_ssl.evaluate import read_rows, region_key
from brats_ssl.stats import paired_comparison

HERE = Path(__file__).resolve().parent
folds = sorted(int(p.name[4]) for p in HERE.glob('fold*_per_case.csv'))
last = lambda f: (lambda r: (int(r['iteration']) + 1, max(float(r['val_dice']), float(r['val_dice_largest']))))(list(csv.DictReader(open(f)))[-1])
for k in folds:
    (i2, v2), (i4, v4) = last(HERE.parent/f'fold{k}_val.csv'), last(HERE/f'fold{k}_val.csv')
    print(f"fold {k}, validation, last checkpoint: iteration {i2} {v2:.3f} -> iteration {i4} {v4:.3f} ({v4 - v2:+.3f})")
rows = lambda d: [r for k in folds for r in read_rows(d/f'fold{k}_per_case.csv') if r['method'] == 'unet']
a, b = rows(HERE.parent), rows(HERE)
for g in ('wt', 'tc', 'et'):
    for m in ('dice', 'hd95'):
        c = paired_comparison(a, b, region_key(m, g))
        print(f"test patients of folds {', '.join(map(str, folds))}, {g.upper()} {m}, 4000 - 2000 iterations ({c['n']} patients): {c['mean_a']:.3f} -> "
              f"{c['mean_b']:.3f}, {c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], Wilcoxon p {c['p_value']:.3f}")
