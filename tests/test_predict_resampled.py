"""`predict_case` on a resampled grid (the cpu-3mm and 2 mm path), with values: the tumour probability is restored to
the scan's grid linearly and cut at 0.5, which this test computes on its own with SimpleITK."""
import numpy as np
import SimpleITK as sitk
import torch
from brats_ssl.phantom import make_phantom
from brats_ssl.preprocess import preprocess_case
from brats_ssl.infer import predict_case


class Steep(torch.nn.Module):
    "A 'network' whose tumour probability is a known function of the input: sigmoid(4 (x - 1)) for a z-scored FLAIR x."
    size_multiple = 1
    def __init__(self): super().__init__(); self.slope = torch.nn.Parameter(torch.tensor(4.0))
    def forward(self, x): return torch.cat([torch.zeros_like(x), self.slope * (x - 1)], 1)


def test_predict_case_restores_probabilities_linearly():
    flair, seg = make_phantom(3)
    pre = preprocess_case(flair, seg, spacing=6.0)                  # 3 mm phantom at 6 mm: a real resampled grid
    assert pre.grid.spacing != pre.source.spacing
    mask, unc = predict_case(Steep(), pre, (16, 16, 16), uncertainty=True)
    x = torch.from_numpy(sitk.GetArrayFromImage(pre.image))
    p = torch.sigmoid(4 * (x - 1)).numpy().astype(np.float32)       # the probability on the processed grid
    s = pre.source
    back = sitk.Resample(pre.grid.image(p), list(s.size), sitk.Transform(), sitk.sitkLinear, list(s.origin), list(s.spacing),
                         list(s.direction), 0.0, sitk.sitkFloat32)
    want = sitk.GetArrayFromImage(back) > 0.5
    got = sitk.GetArrayFromImage(mask)
    assert mask.GetSize() == flair.GetSize() and mask.GetSpacing() == flair.GetSpacing()
    assert got.dtype == np.uint8 and want.sum() > 100
    np.testing.assert_array_equal(got.astype(bool), want)
    h = -(p * np.log(p + 1e-6) + (1 - p) * np.log(1 - p + 1e-6))      # the uncertainty: the entropy on the processed grid, restored linearly
    hb = sitk.Resample(pre.grid.image(np.clip(h, 0, None).astype(np.float32)), list(s.size), sitk.Transform(), sitk.sitkLinear,
                       list(s.origin), list(s.spacing), list(s.direction), 0.0, sitk.sitkFloat32)
    np.testing.assert_allclose(sitk.GetArrayFromImage(unc), sitk.GetArrayFromImage(hb), atol=1e-5)
