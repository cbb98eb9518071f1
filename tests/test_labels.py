"""Labels read by what they say: nnU-Net's region-style dataset.json (its BraTS 2021 conversion, Dataset137_BraTS2021) and
the paediatric cases, whose 2023 and 2024 releases share file names but not label values. Tiny synthetic cases, no real data."""
import json
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from brats_ssl.io import (BratsError, find_cases, level_labels, read_case, region_levels, region_mask, stated_labels,
                          tumour_mask)

SHAPE = (12, 14, 16)   # z, y, x


def brats_ssl(*args):
    return subprocess.run([sys.executable, '-c', 'import sys; from brats_ssl.cli import main; sys.exit(main())', *map(str, args)],
                          capture_output=True, text=True)


def _write(arr, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(img, str(path), True)


def _flair():
    rng = np.random.default_rng(0)
    a = np.zeros(SHAPE, np.float32)
    a[1:-1, 1:-1, 1:-1] = 100 + 10 * rng.random((SHAPE[0] - 2, SHAPE[1] - 2, SHAPE[2] - 2))
    return a


def _seg(values):
    "Nested blocks: values[0] outermost (the oedema of the adult labels), ..., values[-1] innermost."
    a = np.zeros(SHAPE, np.uint8)
    for k, v in enumerate(values):
        a[2 + k:10 - k, 2 + k:12 - k, 2 + k:14 - k] = v
    return a


# nnU-Net's dataset.json for BraTS 2021, as nnunetv2/dataset_conversion/Dataset137_BraTS21.py writes it
NNUNET_BRATS21 = {
    'channel_names': {'0': 'T1', '1': 'T1ce', '2': 'T2', '3': 'Flair'},
    'labels': {'background': 0, 'whole tumor': [1, 2, 3], 'tumor core': [2, 3], 'enhancing tumor': [3]},
    'numTraining': 1, 'file_ending': '.nii.gz',
    'reference': 'see https://www.synapse.org/#!Synapse:syn25829067/wiki/610863',
    'licence': 'see https://www.synapse.org/#!Synapse:syn25829067/wiki/610863',
    'regions_class_order': [1, 2, 3], 'dataset_release': '1.0'}


def _nnunet(root, labels=None):
    "An nnU-Net raw folder with one case: four channel files, a label of 1 oedema, 2 core, 3 enhancing (its conversion's values)."
    d = root/'Dataset137_BraTS2021'
    for k in range(4): _write(_flair() * (k + 1), d/'imagesTr'/f'BraTS2021_00000_{k:04d}.nii.gz')
    _write(_seg([1, 2, 3]), d/'labelsTr'/'BraTS2021_00000.nii.gz')
    (d/'dataset.json').write_text(json.dumps(dict(NNUNET_BRATS21, **({} if labels is None else dict(labels=labels))), indent=4))
    return d


def test_nnunet_regions_read_by_contents(tmp_path):
    d = _nnunet(tmp_path)
    (case,) = find_cases(d)
    flair, seg = read_case(case)
    arr = sitk.GetArrayFromImage(seg)
    assert np.array_equal(sitk.GetArrayViewFromImage(flair), _flair() * 4)          # channel 3, 'Flair'
    assert region_levels(np.array([0, 1, 2, 3]), case.labels).tolist() == [0, 1, 2, 3]
    lv = region_levels(arr, case.labels)
    assert np.array_equal(lv, arr)                                                         # 1 oedema, 2 core, 3 enhancing
    assert [int(region_mask(lv, r).sum()) for r in ('wt', 'tc', 'et')] == [int((arr >= 1).sum()), int((arr >= 2).sum()), int((arr == 3).sum())]
    assert int((arr == 3).sum()) < int((arr >= 2).sum()) < int((arr >= 1).sum())          # three different regions
    assert np.array_equal(tumour_mask(arr, case.labels), arr > 0)
    assert level_labels(np.array([0, 1, 2, 3]), case.labels).tolist() == [0, 1, 2, 3]      # written back in the file's own values
    assert np.array_equal(level_labels(lv, case.labels), arr)


@pytest.mark.parametrize('labels, msg', [
    ({'background': 0, 'a': [1, 2], 'b': [3]}, "regions 'a' [1, 2] and 'b' [3] are not nested (neither holds the other)"),
    ({'background': 0, 'whole tumor': [1, 2], 'tumor core': [2, 3], 'enhancing tumor': [3]}, "are not nested (neither holds the other)"),
    ({'background': 0, 'whole tumor': [1, 2, 3], 'enhancing tumor': [2, 3], 'tumor core': [3]},
     "'enhancing tumor' [2, 3] is named like the enhancing tumour, but its place among the nested regions makes it the tumour core"),
    ({'background': 0, 'tumor core': [1, 2, 3], 'whole tumor': [2, 3], 'enhancing tumor': [3]}, "'tumor core' [1, 2, 3] is named like the tumour core"),
])
def test_regions_that_do_not_nest_are_refused(tmp_path, labels, msg):
    d = _nnunet(tmp_path, labels)
    with pytest.raises(BratsError) as e: find_cases(d)
    assert str(e.value).startswith(f"{d/'dataset.json'}: the label region") and msg in str(e.value), str(e.value)
    p = brats_ssl('preprocess', d, tmp_path/'prep')
    assert p.returncode == 2 and p.stderr.startswith(f"brats-ssl preprocess: error: {d/'dataset.json'}: "), p.stderr
    assert 'Traceback' not in p.stderr and not (tmp_path/'prep').exists()


# the same tumour in the two paediatric releases: 2023 (adult labels) 2 SNFH, 1 NETC, 3 ET; 2024: 4 ED, 2 NET, 3 CC, 1 ET
PED = {2023: ('BraTS-PED-00001-000', [2, 1, 3], 'brats2023'), 2024: ('BraTS-PED-00002-000', [4, 2, 3, 1], 'brats-ped')}
LEVELS = {2023: [1, 2, 3], 2024: [1, 2, 2, 3]}     # oedema, core (2024: NET and cyst), enhancing, outside in


def _ped(root, year, labelled=True):
    cid, values, _ = PED[year]
    d = root/f'ped{year}'/cid
    for s in ('t2f', 't1n', 't1c', 't2w'): _write(_flair(), d/f'{cid}-{s}.nii.gz')
    if labelled: _write(_seg(values), d/f'{cid}-seg.nii.gz')
    return root/f'ped{year}'


@pytest.mark.parametrize('year', [2023, 2024])
def test_ped_read_with_the_stated_convention(tmp_path, year):
    root, (cid, values, name) = _ped(tmp_path, year), PED[year]
    with pytest.raises(BratsError) as e: find_cases(root)
    assert f"{cid}-seg.nii.gz: case {cid} is a BraTS-PEDs case" in str(e.value)
    assert '--labels brats2023 for BraTS-PEDs 2023, --labels brats-ped for BraTS-PEDs 2024' in str(e.value)
    (case,) = find_cases(root, labels=name)
    _, seg = read_case(case)
    arr = sitk.GetArrayFromImage(seg)
    expect = np.zeros(SHAPE, np.uint8)
    for v, level in zip(values, LEVELS[year]): expect[arr == v] = level
    assert np.array_equal(region_levels(arr, case.labels), expect)
    assert set(np.unique(expect)) == {0, 1, 2, 3}
    with stated_labels(name): assert find_cases(root)[0].labels.name == name
    other = 'brats-ped' if name == 'brats2023' else 'brats2023'
    assert not np.array_equal(region_levels(arr, other), expect)         # the other reading: a different core and enhancing tumour


def test_unlabelled_ped_needs_the_convention_only_to_write_labels(tmp_path):
    (case,) = find_cases(_ped(tmp_path, 2024, labelled=False))
    assert not case.labelled                                               # found: a whole-tumour prediction is the same in both
    with pytest.raises(BratsError, match='--labels brats2023 for BraTS-PEDs 2023, --labels brats-ped for BraTS-PEDs 2024'):
        level_labels(np.array([0, 1, 2, 3]), case.labels)                  # a three-region label map is not
    assert level_labels(np.array([0, 1, 2, 3]), find_cases(tmp_path/'ped2024', labels='brats-ped')[0].labels).tolist() == [0, 4, 2, 1]


def test_ped_through_the_command(tmp_path):
    "The error is one line with exit 2; with --labels, preprocess records the convention and evaluate reads each year right."
    for year in (2023, 2024): _ped(tmp_path, year)
    (tmp_path/'pred').mkdir()
    for cmd in (('preprocess', tmp_path/'ped2023', tmp_path/'prep'), ('evaluate', tmp_path/'pred', tmp_path/'ped2024')):
        p = brats_ssl(*cmd)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith(f"brats-ssl {cmd[0]}: error: "), p.stderr
        assert '--labels brats2023 for BraTS-PEDs 2023, --labels brats-ped for BraTS-PEDs 2024' in lines[0]
    assert not (tmp_path/'prep').exists()
    p = brats_ssl('preprocess', tmp_path/'ped2023', tmp_path/'prep', '--labels', 'brats2023', '--workers', 1, '--regions', 'wt', 'tc', 'et')
    assert p.returncode == 0, p.stderr
    rec = json.loads((tmp_path/'prep'/'BraTS-PED-00001-000.json').read_text())
    assert rec['sources']['labels']['name'] == 'brats2023' and rec['label']
    for year in (2023, 2024):
        cid, values, name = PED[year]
        pred = tmp_path/f'pred{year}'
        pred.mkdir()
        # a "prediction": the oedema ring only, written in the case's own values (its first value is the oedema)
        seg = sitk.ReadImage(str(tmp_path/f'ped{year}'/cid/f'{cid}-seg.nii.gz'))
        ring = sitk.GetImageFromArray((sitk.GetArrayFromImage(seg) > 0).astype(np.uint8) * values[0]); ring.CopyInformation(seg)
        sitk.WriteImage(ring, str(pred/f'{cid}_pred.nii.gz'))
        p = brats_ssl('evaluate', pred, tmp_path/f'ped{year}', '--regions', 'wt', 'tc', 'et', '--labels', name, '--out', pred/'rows.csv')
        assert p.returncode == 0, p.stderr
        head, row = (pred/'rows.csv').read_text().splitlines()[:2]
        r = dict(zip(head.split(','), row.split(',')))
        assert float(r['dice']) == 1.0 and float(r['dice_tc']) == 0.0, r   # whole tumour right; no core predicted
