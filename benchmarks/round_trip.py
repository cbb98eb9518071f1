"""How much Dice the resampling round trip costs: each expert label taken to the coarse grid (as `preprocess_case` does)
and back to the 1 mm FLAIR grid, by nearest neighbour on the coarse mask or linearly on it as a probability (> 0.5);
with `--regions`, for each of the three BraTS regions (linearly, as predictions are restored).

    python benchmarks/round_trip.py [--data ../shared/data/brats18] [--spacings 2 3] [--regions]
"""
import argparse
from brats_ssl.io import default_data_dir
import numpy as np
import SimpleITK as sitk
from brats_ssl.io import find_cases, read_case, REGIONS, region_levels, region_mask
from brats_ssl.preprocess import preprocess_case
from brats_ssl.metrics import dice

p = argparse.ArgumentParser()
p.add_argument('--data', default=str(default_data_dir()))
p.add_argument('--spacings', type=float, nargs='+', default=[2.0, 3.0])
p.add_argument('--regions', action='store_true', help='the round trip of WT, TC and ET (linear, > 0.5)')
a = p.parse_args()
cases = [c for c in find_cases(a.data) if c.labelled]
for sp in a.spacings:
    if a.regions:
        by = {r: [] for r in REGIONS}
        for c in cases:
            flair, seg = read_case(c)
            ref = region_levels(sitk.GetArrayFromImage(seg), c.labels)
            pre = preprocess_case(flair, seg, spacing=sp, labels=c.labels, regions=REGIONS)
            lv = sitk.GetArrayFromImage(pre.label)
            for k, r in enumerate(REGIONS):
                back = pre.restore((lv > k).astype(np.float32), sitk.sitkLinear)
                by[r].append(dice(sitk.GetArrayFromImage(back) > 0.5, region_mask(ref, r)))
        print(f"{sp:g} mm, {len(cases)} cases: Dice of the round trip (linear) " +
              ', '.join(f"{r.upper()} {np.mean(v):.3f} (worst {np.min(v):.3f})" for r, v in by.items()))
        continue
    nearest, linear = [], []
    for c in cases:
        flair, seg = read_case(c)
        ref = sitk.GetArrayFromImage(seg) > 0
        pre = preprocess_case(flair, seg, spacing=sp)
        nearest.append(dice(sitk.GetArrayFromImage(pre.restore(pre.label)) > 0, ref))
        linear.append(dice(sitk.GetArrayFromImage(pre.restore(sitk.Cast(pre.label, sitk.sitkFloat32), sitk.sitkLinear)) > 0.5, ref))
    print(f"{sp:g} mm, {len(cases)} cases: Dice of the round trip, nearest neighbour {np.mean(nearest):.3f} (worst {np.min(nearest):.3f}), "
          f"linear {np.mean(linear):.3f} (worst {np.min(linear):.3f})")
