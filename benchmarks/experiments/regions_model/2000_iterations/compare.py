"""The regions recipe trained 2000 iterations (kept here) against the shipped 4000 (kept one folder up), on the same
folds and the same final split: validation first (where the length was chosen: the last checkpoint's mean Dice of the
three regions, which no choice has touched, and the chosen checkpoint's), then the test patients (paired, per region).

    python benchmarks/experiments/regions_model/2000_iterations/compare.py
"""
import csv
from pathlib import Path
from brats_ssl.evaluate import read_rows, region_key
from brats_ssl.stats import paired_comparison, p_text

HERE, UP = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1]
score = lambda r: max(float(r['val_dice']), float(r['val_dice_largest']))      # the better post-processing's, as training chooses
curve = lambda f: [(int(r['iteration']) + 1, score(r)) for r in csv.DictReader(open(f))]
runs = [f.name[:-len('_val.csv')] for f in sorted(HERE.glob('*_val.csv')) if f.name != 'mirror_val.csv' and (UP/f.name).exists()]
last, chosen = [], []
for run in runs:
    a, b = curve(HERE/f'{run}_val.csv'), curve(UP/f'{run}_val.csv')
    (i2, v2), (i4, v4) = a[-1], b[-1]
    (j2, w2), (j4, w4) = max(a, key=lambda t: t[1]), max(b, key=lambda t: t[1])
    last.append(v4 - v2); chosen.append(w4 - w2)
    print(f"{run}, validation: last checkpoint iteration {i2} {v2:.3f} -> iteration {i4} {v4:.3f} ({v4 - v2:+.3f}); "
          f"chosen checkpoint iteration {j2} {w2:.3f} -> iteration {j4} {w4:.3f} ({w4 - w2:+.3f})")
print(f"validation, {len(runs)} runs: the last checkpoint higher at 4000 in {sum(d > 0 for d in last)}, mean {sum(last) / len(last):+.3f}; "
      f"the chosen checkpoint higher in {sum(d > 0 for d in chosen)}, mean {sum(chosen) / len(chosen):+.3f}")
folds = sorted(int(p.name[4]) for p in HERE.glob('fold*_per_case.csv'))
rows = lambda d: [r for k in folds for r in read_rows(d/f'fold{k}_per_case.csv') if r['method'] == 'unet']
a, b = rows(HERE), rows(UP)
for g in ('wt', 'tc', 'et'):
    for m in ('dice', 'hd95'):
        c = paired_comparison(a, b, region_key(m, g))
        print(f"test patients of folds {', '.join(map(str, folds))}, {g.upper()} {m}, 4000 - 2000 iterations ({c['n']} patients): {c['mean_a']:.3f} -> "
              f"{c['mean_b']:.3f}, {c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], Wilcoxon p {p_text(c['p_value'])}")
