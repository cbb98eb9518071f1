"""Four modalities in, the three BraTS regions out: preprocessing, losses, methods and predictions (synthetic cases, and
one real case where BRATS_DATA is present)."""
import math
import numpy as np
import pytest
import SimpleITK as sitk
import torch
from brats_ssl.io import (BratsError, REGIONS, find_cases, read_image, region_levels, region_mask, write_image, level_labels,
                          label_convention)
from brats_ssl.preprocess import preprocess_case, preprocess_dataset, load_arrays, load_case
from brats_ssl.losses import soft_dice_loss, supervised_loss, uncertainty_threshold
from brats_ssl.methods import make_method
from brats_ssl.train import TrainConfig, network, train, TINY
from brats_ssl.pipeline import predict_dataset
from brats_ssl.phantom import write_phantoms

ALL = ('flair', 't1', 't1ce', 't2')


def test_real_case_four_channels_and_levels(brats_root):
    case = [c for c in find_cases(brats_root) if c.labelled][0]
    others = {m: case.path(m) for m in ALL[1:]}
    p = preprocess_case(case.flair, case.seg, others=dict(reversed(list(others.items()))), regions=REGIONS)
    x = p.input()
    assert x.shape[0] == 4
    b = x[0] != 0                                          # FLAIR's brain: every channel is normalised on it
    for k, m in enumerate(ALL):
        v = x[k][b]
        assert abs(v.mean()) < 1e-3 and abs(v.std() - 1) < 1e-3, (m, v.mean(), v.std())
        assert np.all(x[k][~b] == 0)
    raw = {m: sitk.GetArrayFromImage(read_image(case.path(m), m)).astype(np.float64) for m in ALL}
    for k, m in enumerate(ALL[1:], 1):                    # channel order is MODALITIES', whatever the dict's order
        assert np.corrcoef(x[k][b], raw[m][tuple(slice(s, s + n) for s, n in zip(p.info['bbox_start'][::-1], p.info['bbox_size'][::-1]))][b])[0, 1] > 0.9
        assert p.info[m]['std'] > 0
    seg = sitk.GetArrayFromImage(read_image(case.seg, 'label'))
    back = sitk.GetArrayFromImage(p.restore(p.label))     # no resampling: the levels come back exactly
    np.testing.assert_array_equal(back, region_levels(seg))
    for r in REGIONS: assert region_mask(back, r).sum() == region_mask(region_levels(seg), r).sum() > 0


def test_real_case_round_trip_per_region(brats_root):
    "Resampling to 2 or 3 mm and back costs most on the thin enhancing rim: the round trip's Dice per region."
    case = [c for c in find_cases(brats_root) if c.labelled][0]
    ref = region_levels(sitk.GetArrayFromImage(read_image(case.seg, 'label')))
    for spacing, floor in ((2.0, (0.9, 0.85, 0.7)), (3.0, (0.85, 0.75, 0.5))):
        p = preprocess_case(case.flair, case.seg, spacing=spacing, regions=REGIONS)
        lv = sitk.GetArrayFromImage(p.restore(p.label))
        for r, f in zip(REGIONS, floor):
            a, b = region_mask(lv, r), region_mask(ref, r)
            d = 2 * (a & b).sum() / (a.sum() + b.sum())
            assert d > f, (spacing, r, d)


def test_other_modality_checked(tmp_path):
    f, seg = [read_image(p, 'x') for p in (write_phantoms(tmp_path/'d', n=1, size=(40, 40, 28), spacing=(6., 6., 6.))[0].flair,
                                            find_cases(tmp_path/'d')[0].seg)]
    bad = sitk.Image(f); bad.SetSpacing((1., 1., 1.))
    with pytest.raises(BratsError, match='FLAIR and T1 grids differ'): preprocess_case(f, seg, others={'t1': bad})
    nan = sitk.Cast(f, sitk.sitkFloat32); nan[5, 5, 5] = float('nan')
    with pytest.raises(BratsError, match='T2 holds 1 NaN'): preprocess_case(f, seg, others={'t2': nan})
    with pytest.raises(BratsError, match="unknown modality 'dwi'"): preprocess_case(f, seg, others={'dwi': f})
    with pytest.raises(BratsError, match='regions wt tc: choose'): preprocess_case(f, seg, regions=('wt', 'tc'))


def test_nested_dice_loss():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 2, 4, 4, 4), torch.randint(0, 2, (2, 4, 4, 4))
    assert soft_dice_loss(logits, target, nested=True) == soft_dice_loss(logits, target)   # two classes: the same number
    logits = torch.tensor([0., 0., 0., 10.]).reshape(1, 4, 1, 1, 1).repeat(1, 1, 1, 1, 2)      # sure of level 3 (ET) in 2 voxels
    target = torch.tensor([3, 1]).reshape(1, 1, 1, 2)                                       # ET, oedema
    p3 = torch.softmax(torch.tensor([0., 0., 0., 10.]), 0)
    wt, tc, et = 1 - p3[0], p3[2] + p3[3], p3[3]
    want = 1 - ((2 * 2 * wt) / (2 * wt + 2) + (2 * tc) / (2 * tc + 1) + (2 * et) / (2 * et + 1)) / 3
    assert abs(float(soft_dice_loss(logits, target, nested=True, eps=0)) - float(want)) < 1e-6
    assert uncertainty_threshold(0, 100, 4) == pytest.approx((0.75 + 0.25 * math.exp(-5)) * math.log(4))
    assert uncertainty_threshold(100, 100, 2) == math.log(2)


@pytest.mark.parametrize('name', ['unet', 'mt', 'uamt'])
def test_every_method_with_regions(name):
    torch.manual_seed(0)
    cfg = TrainConfig(method=name, modalities=ALL, regions=REGIONS, **TINY)
    net = network(cfg)
    assert (net.in_channels, net.head.out_channels) == (4, 4)
    m = make_method(name, regions=REGIONS, **({'T': 2} if name == 'uamt' else {}))
    m.setup(net)
    xl, yl, xu = torch.randn(2, 4, 16, 16, 16), torch.randint(0, 4, (2, 16, 16, 16)), torch.randn(2, 4, 16, 16, 16)
    loss, logs = m.loss(net, xl, yl, xu if name != 'unet' else None, 5, 10)
    loss.backward()
    assert math.isfinite(logs['loss']) and logs['loss'] > 0
    if name == 'uamt': assert 0 <= logs['kept'] <= 1 and logs['uncertainty'] <= math.log(4) + 1e-6


def test_uamt_threshold_follows_the_classes():
    "A teacher unsure between 4 classes (entropy ln 4) is masked out; unsure between 2 of them (ln 2 < 0.75 ln 4) it is kept."
    m = make_method('uamt', T=2, regions=REGIONS)
    class Fixed(torch.nn.Module):
        def __init__(self, logits): super().__init__(); self.l = logits
        def forward(self, x): return self.l.expand(x.shape[0], -1, *x.shape[2:])
    x = torch.zeros(1, 4, 2, 2, 2)
    m.teacher = Fixed(torch.zeros(1, 4, 1, 1, 1))
    assert m.teacher_output(x, 0, 10)[2]['kept'] == 0.0
    m.teacher = Fixed(torch.tensor([0., 0., -30., -30.]).reshape(1, 4, 1, 1, 1))
    assert m.teacher_output(x, 0, 10)[2]['kept'] == 1.0


def _to_2023(src, dst):
    "Copies of BraTS 2018-layout phantoms in the BraTS 2023 layout and label values (1 NETC, 2 SNFH, 3 ET)."
    for c in find_cases(src):
        cid = c.id.replace('_', '-')
        for m, suffix in (('flair', 't2f'), ('t1', 't1n'), ('t1ce', 't1c'), ('t2', 't2w')):
            write_image(read_image(c.path(m), m), dst/cid/f"{cid}-{suffix}.nii.gz")
        seg = read_image(c.seg, 'label'); a = sitk.GetArrayFromImage(seg); a[a == 4] = 3
        out = sitk.GetImageFromArray(a); out.CopyInformation(seg); write_image(out, dst/cid/f"{cid}-seg.nii.gz")


def test_tiny_run_label_maps_in_each_convention(tmp_path):
    cases = write_phantoms(tmp_path/'data', n=4, seed=0, size=(40, 40, 28), spacing=(6., 6., 6.), modalities=ALL)
    ids = preprocess_dataset(tmp_path/'data', tmp_path/'prep', modalities=ALL, regions=REGIONS, progress=False, workers=1)
    x, y = load_arrays(tmp_path/'prep', ids[0])
    assert x.shape[0] == 4 and set(np.unique(y)) == {0, 1, 2, 3}
    q = load_case(tmp_path/'prep', ids[0])
    np.testing.assert_array_equal(q.input(), x)
    split = dict(labelled=ids[:2], unlabelled=ids[2:3], val=ids[3:], test=[])
    cfg = TrainConfig(method='uamt', iterations=2, val_every=1, modalities=ALL, regions=REGIONS, **TINY)
    train(tmp_path/'prep', tmp_path/'run', split, cfg, progress=False)
    with pytest.raises(BratsError, match='preprocessed with modalities flair t1 t1ce t2 and regions wt tc et'):
        train(tmp_path/'prep', tmp_path/'run2', split, TrainConfig(method='unet', iterations=1, **TINY), progress=False)
    _to_2023(tmp_path/'data', tmp_path/'d23')
    ck = tmp_path/'run'/'checkpoint_best.pt'
    a = predict_dataset(ck, find_cases(tmp_path/'data'), tmp_path/'p18', uncertainty=True, progress=False)
    b = predict_dataset(ck, find_cases(tmp_path/'d23'), tmp_path/'p23', progress=False)
    for fa, fb, ca, cb in zip(a, b, find_cases(tmp_path/'data'), find_cases(tmp_path/'d23')):
        la, lb = (sitk.GetArrayFromImage(read_image(f, 'prediction')) for f in (fa, fb))
        assert set(np.unique(la)) <= {0, 1, 2, 4} and set(np.unique(lb)) <= {0, 1, 2, 3}
        np.testing.assert_array_equal(region_levels(la, ca.labels), region_levels(lb, cb.labels))
        assert la.dtype == np.uint8 and read_image(fa, 'p').GetSize() == read_image(ca.flair, 'f').GetSize()
    assert sorted(p.name for p in (tmp_path/'p18').glob(f'{cases[0].id}_uncertainty_*.nii.gz')) == [
        f'{cases[0].id}_uncertainty_{r}.nii.gz' for r in ('et', 'tc', 'wt')]
    (tmp_path/'data'/cases[1].id/f'{cases[1].id}_t1ce.nii.gz').unlink()
    with pytest.raises(BratsError, match=f'case {cases[1].id} .*no T1ce image found'):
        predict_dataset(ck, find_cases(tmp_path/'data'), tmp_path/'p18b', progress=False)


def test_tiny_reproduce_four_modalities_three_regions(tmp_path):
    from brats_ssl.pipeline import reproduce
    from brats_ssl.evaluate import read_rows
    s = reproduce(tmp_path, budget='tiny', modalities=ALL, regions=REGIONS, progress=False)
    assert {'dice', 'dice_tc', 'dice_et', 'hd95_et'} <= set(s['UAMT']) and 'dice_tc' not in s['Threshold (no learning)']
    rows = read_rows(tmp_path/'per_case.csv')
    assert all(r['dice_et'] is not None for r in rows if r['method'] != 'threshold')
    assert '| Method | Region |' in (tmp_path/'table1.md').read_text() and 'dice_tc' in (tmp_path/'comparisons.md').read_text()
    assert (tmp_path/'figures'/'fig2_regions.png').stat().st_size > 1000
    for g in ('tc', 'et'):                                   # the phantoms have every region: each one's 3D surfaces
        assert (tmp_path/'figures'/f'fig2_surfaces_{g}.png').stat().st_size > 1000
    assert sorted(p.name for p in (tmp_path/'data'/'Phantom_000').iterdir()) == [
        f'Phantom_000_{m}.nii.gz' for m in ('flair', 'seg', 't1', 't1ce', 't2')]
