"""Paired comparison of two screens (or a screen and the threshold) on the same patients: per-patient Dice and HD95
differences B - A, bootstrap 95 % CI, Wilcoxon p. Reads benchmarks/experiments/screens/<screen>_per_case.csv written by benchmarks/experiments/screen.py.

    python benchmarks/experiments/screen_compare.py A B [--method unet]      (B may be 'threshold' of A's folder)
"""
import argparse
from pathlib import Path
from brats_ssl.evaluate import read_rows
from brats_ssl.stats import paired_comparison

p = argparse.ArgumentParser()
p.add_argument('a'); p.add_argument('b'); p.add_argument('--method', default='unet')
a = p.parse_args()
rows = lambda s, m: [r for r in read_rows(Path(__file__).with_name('screens')/f"{s}_per_case.csv") if r['method'] == m]
ra = rows(a.a, a.method)
rb = rows(a.a, 'threshold') if a.b == 'threshold' else rows(a.b, a.method)
for k in ('dice', 'hd95'):
    c = paired_comparison(ra, rb, k)
    print(f"{a.b} - {a.a} ({a.method}) {k}: n={c['n']} mean {c['mean_a']:.4f} -> {c['mean_b']:.4f}, diff {c['mean_diff']:+.4f} "
          f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}], Wilcoxon p={c['p_value']:.4f}")
