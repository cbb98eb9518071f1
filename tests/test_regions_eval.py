"""Per-region evaluation (WT, TC, ET) against medpy, in both BraTS label conventions, and the tables built on it."""
import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from medpy.metric import binary as mb
from scipy import ndimage as ndi

from brats_ssl.io import REGIONS, BratsError, level_labels, region_mask, write_image
from brats_ssl.evaluate import (CASE_FIELDS, METRICS, PAPER_TABLE1, HIGHER_IS_BETTER, evaluate_predictions, pred_path, read_rows,
                                region_fields, region_key, summarise, table1, write_rows, write_table1)
from brats_ssl.stats import compare_methods, paired_comparison

SHAPE = (14, 22, 26)                 # [z, y, x]
SPACING_XYZ = (0.75, 1.25, 2.0)      # SimpleITK order (the arrays' is reversed); exact in the float32 NIfTI header


def _blob(rng, centre, radii) -> np.ndarray:
    z, y, x = np.indices(SHAPE)
    d = sum(((a - c) / r) ** 2 for a, c, r in zip((z, y, x), centre, radii))
    return d + rng.normal(0, 0.15, SHAPE) <= 1.0


def _levels(rng, shift=(0, 0, 0)) -> np.ndarray:
    "A level map with oedema around a core holding enhancing tissue (each nested, ragged edges)."
    c = np.array([7, 11, 13]) + np.array(shift)
    wt = _blob(rng, c, (5, 8, 9))
    tc = _blob(rng, c + 1, (3, 5, 5)) & wt
    et = _blob(rng, c + 1, (2, 3, 3)) & tc & ~ndi.binary_erosion(_blob(rng, c + 1, (2, 3, 3)))   # a ring, as ET often is
    return (wt.astype(np.uint8) + tc + et).astype(np.uint8)


def _image(arr) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(SPACING_XYZ)
    return img


def _write_case(root: Path, pred_dir: Path, cid: str, ref_lv, pred_lv, layout='brats') -> None:
    labels, flair, seg = ('brats', '_flair', '_seg') if layout == 'brats' else ('brats2023', '-t2f', '-seg')
    write_image(_image(np.full(SHAPE, 100, np.int16)), root/cid/f"{cid}{flair}.nii.gz")
    write_image(_image(level_labels(ref_lv, labels)), root/cid/f"{cid}{seg}.nii.gz")
    write_image(_image(level_labels(pred_lv, labels)), pred_path(pred_dir, cid))


@pytest.fixture(scope='module')
def cases(tmp_path_factory):
    "Three cases (reference and prediction level maps) in the 2017-2022 layout; the third has no ET on either side."
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp('regions')
    lv = {}
    for i, shift in enumerate(((0, 0, 0), (1, -2, 1), (0, 1, -1))):
        ref, pred = _levels(rng), _levels(rng, shift)
        if i == 2: ref, pred = np.minimum(ref, 2), np.minimum(pred, 2)
        lv[f"Case_{i}"] = ref, pred
        _write_case(root/'data', root/'pred', f"Case_{i}", ref, pred)
    return root, lv


def test_regions_match_medpy(cases):
    root, lv = cases
    rows = evaluate_predictions(root/'pred', root/'data', progress=False, regions=REGIONS)
    assert [list(r) for r in rows] == [region_fields()] * 3
    sp = SPACING_XYZ[::-1]
    checked = 0
    for row, (ref, pred) in zip(rows, lv.values()):
        for reg in REGIONS:
            p, r = region_mask(pred, reg), region_mask(ref, reg)
            if not (p.any() and r.any()): continue              # medpy has no value for an empty mask
            assert row[region_key('dice', reg)] == pytest.approx(mb.dc(p, r), abs=1e-12)
            assert row[region_key('hd95', reg)] == pytest.approx(mb.hd95(p, r, voxelspacing=sp), abs=1e-9)
            assert row[region_key('asd', reg)] == pytest.approx(mb.asd(p, r, voxelspacing=sp), abs=1e-9)
            assert row[region_key('ravd', reg)] == pytest.approx(abs(mb.ravd(p, r)), abs=1e-12)
            assert row[region_key('ref_ml', reg)] == pytest.approx(r.sum() * np.prod(SPACING_XYZ) / 1000)
            checked += 1
    assert checked == 8                                          # 3 regions x 2 cases, 2 regions of the case without ET
    assert 0.2 < rows[0]['dice_et'] < rows[0]['dice_tc'] < rows[0]['dice'] < 1  # nested regions: the smaller, the harder
    no_et = rows[2]
    assert (no_et['dice_et'], no_et['hd95_et'], no_et['asd_et'], no_et['ravd_et']) == (1.0, 0.0, 0.0, 0.0)


def test_one_sided_empty_is_the_diagonal(cases, tmp_path):
    root, lv = cases
    ref, _ = lv['Case_0']
    _write_case(tmp_path/'data', tmp_path/'pred', 'Miss', ref, np.minimum(ref, 2))          # ET missed
    _write_case(tmp_path/'data', tmp_path/'pred', 'Extra', np.minimum(ref, 2), ref)         # ET where there is none
    extra, miss = evaluate_predictions(tmp_path/'pred', tmp_path/'data', progress=False, regions=('tc', 'et'))
    diag = math.sqrt(sum((n * s) ** 2 for n, s in zip(SHAPE, SPACING_XYZ[::-1])))
    for row in (miss, extra):
        assert row['dice_tc'] == 1.0 and row['dice_et'] == 0.0
        assert row['hd95_et'] == pytest.approx(diag) and row['asd_et'] == pytest.approx(diag)
    assert (miss['ravd_et'], extra['ravd_et']) == (1.0, math.inf)
    assert 'dice' not in miss                                    # WT not asked: only suffixed keys


def test_brats2023_convention(tmp_path):
    "2023 labels (2 oedema, 1 core, 3 enhancing; 4 resection cavity, not tumour) give the same scores as 2017-2022's."
    rng = np.random.default_rng(5)
    ref, pred = _levels(rng), _levels(rng, (0, 1, 1))
    _write_case(tmp_path/'old', tmp_path/'pred_old', 'Old_1', ref, pred)
    _write_case(tmp_path/'new', tmp_path/'pred_new', 'BraTS-GLI-00001-000', ref, pred, layout='brats2023')
    lab = level_labels(pred, 'brats2023')
    assert sorted(np.unique(lab).tolist()) == [0, 1, 2, 3]
    old = evaluate_predictions(tmp_path/'pred_old', tmp_path/'old', progress=False, regions=REGIONS)[0]
    new = evaluate_predictions(tmp_path/'pred_new', tmp_path/'new', progress=False, regions=REGIONS)[0]
    assert {k: v for k, v in new.items() if k != 'case'} == {k: v for k, v in old.items() if k != 'case'}
    lab[lab == 0] = np.where(rng.random(int((lab == 0).sum())) < 0.01, 4, 0).astype(np.uint8)   # a few resection-cavity voxels
    write_image(_image(lab), pred_path(tmp_path/'pred_rc', 'BraTS-GLI-00001-000'))
    assert evaluate_predictions(tmp_path/'pred_rc', tmp_path/'new', progress=False, regions=REGIONS)[0] == new
    lab[0, 0, 0] = 7
    write_image(_image(lab), pred_path(tmp_path/'pred_bad', 'BraTS-GLI-00001-000'))
    with pytest.raises(BratsError, match=r"BraTS-GLI-00001-000_pred\.nii\.gz: prediction holds values that are not labels of the 'brats2023' convention \(e\.g\. 7"):
        evaluate_predictions(tmp_path/'pred_bad', tmp_path/'new', progress=False, regions=('et',))


def test_default_unchanged_and_refusals(cases, tmp_path):
    root, lv = cases
    with pytest.raises(BratsError, match='values other than 0 and 1'):              # label maps are not binary masks
        evaluate_predictions(root/'pred', root/'data', progress=False)
    for cid, (_, pred) in lv.items(): write_image(_image((pred > 0).astype(np.uint8)), pred_path(tmp_path/'bin', cid))
    default = evaluate_predictions(tmp_path/'bin', root/'data', progress=False)
    assert [list(r) for r in default] == [CASE_FIELDS] * 3
    assert evaluate_predictions(tmp_path/'bin', root/'data', progress=False, regions=['wt']) == default
    full = evaluate_predictions(root/'pred', root/'data', progress=False, regions=REGIONS)
    assert default == [{k: r[k] for k in CASE_FIELDS} for r in full]
    prob = (lv['Case_0'][1] > 0) * np.float32(0.7)
    write_image(_image(prob), pred_path(tmp_path/'prob', 'Case_0'))
    with pytest.raises(BratsError, match=r"Case_0_pred\.nii\.gz: prediction holds values that are not labels .*e\.g\. 0\.7"):
        evaluate_predictions(tmp_path/'prob', root/'data', progress=False, ids=['Case_0'], regions=REGIONS)
    for bad in (['wt', 'necrosis'], [], 'WT'):
        with pytest.raises(BratsError, match='region'):
            evaluate_predictions(root/'pred', root/'data', progress=False, regions=bad)


def test_rows_summaries_tables(cases, tmp_path):
    root, _ = cases
    rows = evaluate_predictions(root/'pred', root/'data', progress=False, regions=REGIONS)
    assert read_rows(write_rows(rows, tmp_path/'rows.csv')) == rows
    s = summarise(rows)
    assert list(s) == region_fields()[1:]
    assert all(k in HIGHER_IS_BETTER for k in s)
    assert s['dice_et']['mean'] == pytest.approx(np.mean([r['dice_et'] for r in rows]))
    md = table1({'Net': s}, reference=PAPER_TABLE1).splitlines()
    assert md[0] == '| Method | Region | Dice ↑ | RAVD ↓ | HD95 (mm) ↓ | ASD (mm) ↓ |'
    assert [l.split(' | ')[:2] for l in md[2:]] == [['| Net', 'WT'], ['| Net', 'TC'], ['| Net', 'ET'], ['| U-Net (paper)', 'WT'],
                                                    ['| Mean Teacher (paper)', 'WT'], ['| UAMT (paper)', 'WT']]
    assert md[4].split(' | ')[2].startswith(f"{s['dice_et']['mean']:.3f} ± ")
    csv_path, _ = write_table1({'Net': s}, tmp_path/'t')
    back = read_rows(csv_path)
    assert [(r['region'], r['dice_n']) for r in back] == [('wt', 3), ('tc', 3), ('et', 3)]
    assert back[1]['hd95_mean'] == pytest.approx(s['hd95_tc']['mean'])


def test_wt_table_bytes_unchanged(tmp_path):
    "With the whole tumour only, the table and its CSV are the paper's layout, byte for byte."
    s = summarise([dict(case='a', dice=0.8, ravd=0.1, hd95=10.0, asd=2.0), dict(case='b', dice=0.9, ravd=0.3, hd95=14.0, asd=4.0)])
    assert table1({'U-Net': s}, reference={'U-Net': PAPER_TABLE1['U-Net']}) == (
        '| Method | Dice ↑ | RAVD ↓ | HD95 (mm) ↓ | ASD (mm) ↓ |\n'
        '|:---|---:|---:|---:|---:|\n'
        '| U-Net | 0.850 ± 0.071 | 0.200 ± 0.141 | 12.00 ± 2.83 | 3.00 ± 1.41 |\n'
        '| U-Net (paper) | 0.821 | 0.231 | 12.42 | 3.31 |')
    csv_path, md_path = write_table1({'U-Net': s}, tmp_path, reference=PAPER_TABLE1)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == 'method,source,' + ','.join(f"{k}_{x}" for k in METRICS for x in ('mean', 'std', 'n', 'n_excluded'))
    assert lines[2] == 'U-Net,paper,0.821,,,,0.231,,,,12.42,,,,3.31,,,'


def test_compare_methods_per_region(cases):
    root, _ = cases
    rows = evaluate_predictions(root/'pred', root/'data', progress=False, regions=REGIONS)
    perfect = [dict(case=r['case'], **{region_key('dice', reg): 1.0 for reg in REGIONS}) for r in rows]
    c = compare_methods({'pred': rows, 'perfect': perfect}, metric='dice_tc')[0]
    assert c['metric'] == 'dice_tc' and c['n'] == 3
    assert c['mean_diff'] == pytest.approx(np.mean([1 - r['dice_tc'] for r in rows]))
    with pytest.raises(BratsError, match="no row has the metric 'hd95_et'"):
        paired_comparison(rows, perfect, 'hd95_et')
