"""Every BraTS layout a user downloads, made from copies of real shared cases: BraTS 2015-style float labels with 3,
BraTS 2023 names and labels, BraTS 2024 post-treatment with a resection cavity, a 4-D Decathlon image with its
dataset.json, uncompressed .nii files and a CSV manifest. Each must give the same cases, the same whole tumour and the
same preprocessed arrays as the BraTS 2018 original, and predictions on the scan's own grid."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk

from brats_ssl.io import BratsError, Geometry, find_cases, read_case, read_modality, tumour_mask
from brats_ssl.preprocess import preprocess_case

N = 2   # real cases per layout


def brats_ssl(*args):
    return subprocess.run([sys.executable, '-c', 'import sys; from brats_ssl.cli import main; sys.exit(main())', *map(str, args)],
                          capture_output=True, text=True)


def _write(img, path):
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(img, str(path), True)


def _relabel(seg, mapping, dtype=sitk.sitkUInt8):
    a = sitk.GetArrayFromImage(seg)
    out = np.zeros_like(a)
    for old, new in mapping.items(): out[a == old] = new
    img = sitk.Cast(sitk.GetImageFromArray(out), dtype)
    img.CopyInformation(seg)
    return img


@pytest.fixture(scope='module')
def layouts(brats_root, tmp_path_factory):
    "{layout: (folder or manifest, {original id: id in that layout})} and the original cases."
    root = tmp_path_factory.mktemp('layouts')
    cases = find_cases(brats_root)[:N + 1]
    orig, extra = cases[:N], cases[N]
    out = {}
    # BraTS 2012-2016: the same names, labels stored as float, necrosis split into 1 and non-enhancing 3
    ids = {}
    for c in orig:
        d = root/'brats2015'/c.id
        d.mkdir(parents=True)
        for m in ('flair', 't1', 't1ce', 't2'): (d/f"{c.id}_{m}.nii.gz").symlink_to(c.path(m))
        seg = sitk.ReadImage(str(c.seg))
        a = sitk.GetArrayFromImage(seg).astype(np.float32)
        a[(a == 1) & (np.indices(a.shape)[2] % 2 == 0)] = 3
        f = sitk.GetImageFromArray(a); f.CopyInformation(seg)
        _write(f, d/f"{c.id}_seg.nii.gz")
        ids[c.id] = c.id
    out['brats2015'] = (root/'brats2015', ids)
    # BraTS 2023 (GLI) and 2024 post-treatment: -t2f ..., labels 1 NETC, 2 SNFH, 3 ET (+ 4 resection cavity)
    for name, cavity in (('brats2023', False), ('brats2024', True)):
        ids = {}
        for k, c in enumerate(orig):
            cid = f"BraTS-GLI-{k:05d}-{100 if cavity else 0:03d}"
            d = root/name/cid
            d.mkdir(parents=True)
            for m, s in (('flair', 't2f'), ('t1', 't1n'), ('t1ce', 't1c'), ('t2', 't2w')): (d/f"{cid}-{s}.nii.gz").symlink_to(c.path(m))
            seg = _relabel(sitk.ReadImage(str(c.seg)), {1: 1, 2: 2, 4: 3})
            if cavity:                                  # a resection cavity in brain that is not tumour
                a = sitk.GetArrayFromImage(seg)
                brain = sitk.GetArrayFromImage(sitk.ReadImage(str(c.flair))) > 0
                zz, yy, xx = np.nonzero(brain & (a == 0))
                i = len(zz) // 2
                box = (slice(zz[i] - 3, zz[i] + 3), slice(yy[i] - 3, yy[i] + 3), slice(xx[i] - 3, xx[i] + 3))
                a[box][(a[box] == 0) & brain[box]] = 4
                s2 = sitk.GetImageFromArray(a); s2.CopyInformation(seg); seg = s2
            _write(seg, d/f"{cid}-seg.nii.gz")
            ids[c.id] = cid
        out[name] = (root/name, ids)
    # Decathlon Task01: one 4-D image per case, channels named in dataset.json; imagesTs unlabelled
    d = root/'Task01_BrainTumour'
    ids = {}
    for k, c in enumerate(orig + [extra]):
        cid = f"BRATS_{k + 1:03d}"
        img = sitk.JoinSeries([sitk.ReadImage(str(c.path(m))) for m in ('flair', 't1', 't1ce', 't2')])
        _write(img, d/('imagesTr' if c in orig else 'imagesTs')/f"{cid}.nii.gz")
        if c in orig:
            _write(_relabel(sitk.ReadImage(str(c.seg)), {2: 1, 1: 2, 4: 3}), d/'labelsTr'/f"{cid}.nii.gz")
            ids[c.id] = cid
    (d/'dataset.json').write_text(json.dumps({
        'name': 'BRATS', 'tensorImageSize': '4D', 'modality': {'0': 'FLAIR', '1': 'T1w', '2': 't1gd', '3': 'T2w'},
        'labels': {'0': 'background', '1': 'edema', '2': 'non-enhancing tumor', '3': 'enhancing tumour'}}))
    out['decathlon'] = (d, ids)
    # uncompressed .nii
    ids = {}
    for c in orig:
        for m in ('flair', 'seg'): _write(sitk.ReadImage(str(getattr(c, m))), root/'nii'/c.id/f"{c.id}_{m}.nii")
        ids[c.id] = c.id
    out['nii'] = (root/'nii', ids)
    # a manifest with paths relative to it, to the original files
    man = root/'manifest'/'cases.csv'
    man.parent.mkdir()
    rel = lambda p: os.path.relpath(p, man.parent)
    man.write_text('case,flair,t1ce,seg,labels\n' + ''.join(f"P{k},{rel(c.flair)},{rel(c.t1ce)},{rel(c.seg)},brats\n" for k, c in enumerate(orig)))
    out['manifest'] = (man, {c.id: f"P{k}" for k, c in enumerate(orig)})
    return out, orig, extra


@pytest.mark.parametrize('name', ['brats2015', 'brats2023', 'brats2024', 'decathlon', 'nii', 'manifest'])
def test_same_cases_same_tumour(layouts, name):
    out, orig, extra = layouts
    where, ids = out[name]
    found = {c.id: c for c in find_cases(where)}
    expect = set(ids.values()) | ({'BRATS_003'} if name == 'decathlon' else set())
    assert set(found) == expect
    if name == 'decathlon': assert not found['BRATS_003'].labelled and found['BRATS_003'].channel('flair') == 0
    for c in orig:
        new = found[ids[c.id]]
        f0, s0 = read_case(c)
        f1, s1 = read_case(new)
        assert Geometry.of(f1) == Geometry.of(f0)
        assert np.array_equal(sitk.GetArrayViewFromImage(f1), sitk.GetArrayViewFromImage(f0))
        wt0, wt1 = sitk.GetArrayFromImage(s0) > 0, tumour_mask(sitk.GetArrayViewFromImage(s1), new.labels)
        assert np.array_equal(wt1, wt0)
        if name == 'brats2024': assert (sitk.GetArrayViewFromImage(s1) == 4).sum() > 50   # the cavity is there, and not tumour
        if name != 'nii': assert np.array_equal(sitk.GetArrayFromImage(read_modality(new, 't1ce')), sitk.GetArrayFromImage(read_modality(c, 't1ce')))
        p0 = preprocess_case(c.flair, c.seg)
        p1 = preprocess_case(new.flair, new.seg, channel=new.channel('flair'), labels=new.labels)
        for a, b in ((p0.image, p1.image), (p0.label, p1.label)):
            assert np.array_equal(sitk.GetArrayViewFromImage(a), sitk.GetArrayViewFromImage(b))
        assert p0.info == p1.info and p0.source == p1.source


def test_missing_modality_is_named(layouts):
    out, orig, _ = layouts
    c = find_cases(out['manifest'][0])[0]
    assert c.modalities == ('flair', 't1ce')
    with pytest.raises(BratsError, match=r'case P0 .*no T2 image found'): c.path('t2')


def test_commands_on_each_layout(layouts, tmp_path):
    "preprocess names the layout it found; predict writes on the scan's grid (a 4-D Decathlon image's first three axes); evaluate reads the labels in their convention."
    out, orig, _ = layouts
    expect = dict(brats2015='BraTS 2012-2022 / Kaggle layout', brats2023='BraTS 2023+ layout', decathlon='Decathlon / nnU-Net layout',
                  manifest='CSV manifest')
    for name, what in expect.items():
        p = brats_ssl('preprocess', out[name][0], tmp_path/f'prep_{name}', '--workers', 1, '--spacing', 6)
        assert p.returncode == 0, p.stderr
        n = len(out[name][1]) + (name == 'decathlon')
        assert f"{what}" in p.stderr and f"{n} cases ({len(out[name][1])} labelled, {n - len(out[name][1])} unlabelled)" in p.stderr, p.stderr
    p = brats_ssl('train', tmp_path/'prep_decathlon', tmp_path/'run', '--method', 'unet', '--labelled', 1, '--val', 1, '--test', 0,
                  '--iterations', 2, '--patch', 16, 16, 16, '--filters', 4, 8, '--val-every', 2)
    assert p.returncode == 0, p.stderr
    for name in ('decathlon', 'manifest', 'brats2024'):
        p = brats_ssl('predict', tmp_path/'run'/'checkpoint_best.pt', out[name][0], tmp_path/f'pred_{name}', '--overlap', 0)
        assert p.returncode == 0, p.stderr
        for c in find_cases(out[name][0]):
            pred = sitk.ReadImage(str(tmp_path/f'pred_{name}'/f'{c.id}_pred.nii.gz'))
            assert Geometry.of(pred) == Geometry.of(read_case(c)[0]) and pred.GetSize() == (240, 240, 155)
        p = brats_ssl('evaluate', tmp_path/f'pred_{name}', out[name][0])
        assert p.returncode == 0 and p.stdout.splitlines()[-1].startswith('mean'), p.stderr


def test_mixed_layouts_refused(layouts, tmp_path):
    out, orig, _ = layouts
    mixed = tmp_path/'mixed'
    mixed.mkdir()
    (mixed/'a').symlink_to(out['brats2015'][0], target_is_directory=True)
    (mixed/'b').symlink_to(out['brats2023'][0], target_is_directory=True)
    p = brats_ssl('preprocess', mixed, tmp_path/'prep')
    assert p.returncode == 2 and 'mixes data layouts' in p.stderr and '_flair.nii.gz' in p.stderr and '-t2f.nii.gz' in p.stderr
    assert 'Traceback' not in p.stderr and not (tmp_path/'prep').exists()


def test_bad_labels_still_refused(layouts, tmp_path):
    "A value no convention of the layout allows is refused, naming the file and the value."
    out, orig, _ = layouts
    c = orig[0]
    d = tmp_path/'bad'/c.id
    d.mkdir(parents=True)
    (d/f"{c.id}_flair.nii.gz").symlink_to(c.flair)
    _write(_relabel(sitk.ReadImage(str(c.seg)), {1: 1, 2: 2, 4: 5}), d/f"{c.id}_seg.nii.gz")
    with pytest.raises(BratsError, match=r"_seg.nii.gz: label values \[5\] are not BraTS labels"): read_case(find_cases(d.parent)[0])
