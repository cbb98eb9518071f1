"""How much Dice the resampling round trip costs: each expert label taken to the coarse grid (as `preprocess_case` does)
and back to the 1 mm FLAIR grid, by nearest neighbour on the coarse mask or linearly on it as a probability (> 0.5).

    python benchmarks/round_trip.py [--data ../shared/data/brats18] [--spacings 2 3]
"""
import argparse
from brats_ssl.io import default_data_dir
import numpy as np
import SimpleITK as sitk
from brats_ssl.io import find_cases, read_case
from brats_ssl.preprocess import preprocess_case
from brats_ssl.metrics import dice

p = argparse.ArgumentParser()
p.add_argument('--data', default=str(default_data_dir()))
p.add_argument('--spacings', type=float, nargs='+', default=[2.0, 3.0])
a = p.parse_args()
cases = [c for c in find_cases(a.data) if c.labelled]
for sp in a.spacings:
    nearest, linear = [], []
    for c in cases:
        flair, seg = read_case(c)
        ref = sitk.GetArrayFromImage(seg) > 0
        pre = preprocess_case(flair, seg, spacing=sp)
        nearest.append(dice(sitk.GetArrayFromImage(pre.restore(pre.label)) > 0, ref))
        linear.append(dice(sitk.GetArrayFromImage(pre.restore(sitk.Cast(pre.label, sitk.sitkFloat32), sitk.sitkLinear)) > 0.5, ref))
    print(f"{sp:g} mm, {len(cases)} cases: Dice of the round trip, nearest neighbour {np.mean(nearest):.3f} (worst {np.min(nearest):.3f}), "
          f"linear {np.mean(linear):.3f} (worst {np.min(linear):.3f})")
