"""The GPU check: does the package work, and how fast, on the device it runs on? One table, in a few minutes.

    python benchmarks/gpu_check.py [--device auto] [--data DIR] [--tiny]

1. a training step of every method in the paper's configuration (2 + 2 patches of 96^3, UNet3D(16..256), bf16
   autocast on CUDA): the median of 3 steps after one warm-up, and the peak memory;
2. a whole-case prediction (read + preprocess + predict + restore) of the real case with the largest brain box in DIR
   ($BRATS_DATA, else ../shared/data/brats18), or of a synthetic case when there is none: time and peak memory;
3. a short training run of UAMT on synthetic cases, whose loss must fall;
4. its checkpoint loaded on the CPU must predict the same mask there as on the device (fp32 on both).

Each of 1 and 2 runs in a fresh process, so that its peak memory is its own. The check fails (exit status 1) when
3 or 4 does. `--tiny` runs every part with a tiny network and patch, on the CPU in about a minute: the test suite
runs it so (tests/test_gpu_check.py). Speed is never asserted: the figures are only printed.
"""
from __future__ import annotations
import argparse, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import in_fresh_process, predict_timed, train_steps, largest_case, default_data  # noqa: E402


def _largest_case(data: Path):
    "The FLAIR of the case with the largest brain box in `data`, or None when `data` holds no case."
    from brats_ssl.io import BratsError, find_cases
    try: return largest_case(find_cases(data)).flair
    except BratsError: return None


def _short_run(tmp: Path, device: str, settings: dict, phantoms: dict, iterations: int) -> dict:
    "Train UAMT for `iterations` on synthetic cases; the loss's mean over the first and the last fifth of the run."
    import csv
    from brats_ssl.phantom import write_phantoms
    from brats_ssl.preprocess import preprocess_dataset
    from brats_ssl.data import split_cases
    from brats_ssl.train import TrainConfig, train
    cases = write_phantoms(tmp/'data', **phantoms)
    preprocess_dataset(tmp/'data', tmp/'prep', workers=1, progress=False)
    ids = [c.id for c in cases]
    split = split_cases(ids[:4], 2, 1, 1, ids[4:], seed=0)             # 2 labelled, 1 validation, 1 test; the rest unlabelled
    cfg = TrainConfig(method='uamt', iterations=iterations, val_every=iterations, device=device, **settings)
    t = time.perf_counter()
    train(tmp/'prep', tmp/'run', split, cfg, progress=False)
    secs = time.perf_counter() - t
    with open(tmp/'run'/'log.csv', newline='') as f: loss = [float(r['loss']) for r in csv.DictReader(f)]
    k = max(len(loss) // 5, 1)
    first, last = sum(loss[:k]) / k, sum(loss[-k:]) / k
    return dict(seconds=secs, first=first, last=last, ok=last < 0.9 * first, checkpoint=tmp/'run'/'checkpoint_last.pt',
                test=[c for c in cases if c.id in split['test']][0])


def _same_on_cpu(checkpoint: Path, case, device: str) -> dict:
    "Masks of one case from the checkpoint on `device` and on the CPU (fp32 on both): differing voxels and Dice."
    import SimpleITK as sitk
    from brats_ssl.train import TrainConfig, load_checkpoint, model_from_checkpoint
    from brats_ssl.scale import resolve_device
    from brats_ssl.preprocess import preprocess_case
    from brats_ssl.infer import predict_case
    from brats_ssl.metrics import dice
    st = load_checkpoint(checkpoint, map_location='cpu')
    patch = TrainConfig.from_dict(st['config']).patch
    pre = preprocess_case(case.flair)
    masks = []
    for dev in (resolve_device(device), resolve_device('cpu')):
        mask, _ = predict_case(model_from_checkpoint(st, dev), pre, patch, device=dev, amp=False)
        masks.append(sitk.GetArrayFromImage(mask) > 0)
    a, b = masks
    differ = int((a != b).sum())
    d = dice(a, b) if (a.any() or b.any()) else 1.0
    return dict(differ=differ, voxels=int(a.size), dice=d, ok=differ <= 1e-3 * a.size)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='auto')
    ap.add_argument('--data', type=Path, default=default_data())
    ap.add_argument('--tiny', action='store_true', help='a tiny network and patch: every part in about a minute on a CPU')
    a = ap.parse_args(argv)
    import torch
    from brats_ssl.scale import resolve_device
    from brats_ssl.methods import METHODS
    from brats_ssl.train import TINY
    dev = resolve_device(a.device)
    t0 = time.perf_counter()
    if a.tiny:
        size, steps, settings, iterations = TINY['patch'][0], 2, dict(TINY), 40
        phantoms = dict(n=6, size=(40, 40, 28), spacing=(6.0, 6.0, 6.0))
        short = dict(TINY, lr=0.1)
    else:
        size, steps, settings, iterations = 96, 3, {}, 200
        phantoms = dict(n=8, size=(80, 80, 52), spacing=(3.0, 3.0, 3.0))
        short = dict(patch=(32, 32, 32), filters=(8, 16, 32, 64), lr=0.1, fg_prob=0.8)
    name = torch.cuda.get_device_name(dev) if dev.type == 'cuda' else 'CPU'
    rows = [(f"train step {m} {size}^3, 2+2 patches{', bf16' if dev.type == 'cuda' else ''}", f"{r['seconds']:.3f} s, peak {r['peak_mb']:.0f} MB")
            for m in METHODS for r in [in_fresh_process(train_steps, (m, size, steps, a.device, settings))]]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        flair = _largest_case(a.data)
        if flair is None:
            from brats_ssl.phantom import write_phantoms
            flair = write_phantoms(tmp/'one', n=1)[0].flair
        p = in_fresh_process(predict_timed, (str(flair), a.device, 0.5, settings))
        rows.append((f"predict {p['case']} ({'x'.join(map(str, p['size']))}), window {'x'.join(map(str, p['window']))}",
                     f"{p['seconds']:.2f} s, peak {p['peak_mb']:.0f} MB"))
        run = _short_run(tmp, a.device, short, phantoms, iterations)
        rows.append((f"UAMT, {iterations} iterations on synthetic cases: mean loss of the first / last fifth",
                     f"{run['first']:.3f} -> {run['last']:.3f} ({run['seconds']:.0f} s) {'ok' if run['ok'] else 'FAILED: did not fall by 10 %'}"))
        same = _same_on_cpu(run['checkpoint'], run['test'], a.device)
        rows.append((f"its checkpoint on the CPU: voxels whose mask differs from {name}'s", f"{same['differ']} of {same['voxels']} "
                     f"(Dice {same['dice']:.4f}) {'ok' if same['ok'] else 'FAILED: more than 0.1 %'}"))
    print(f"brats_ssl GPU check on {name}, torch {torch.__version__}{' (tiny)' if a.tiny else ''}: {time.perf_counter() - t0:.0f} s")
    print("| what | figure |\n|:---|---:|")
    for what, fig in rows: print(f"| {what} | {fig} |")
    return 0 if run['ok'] and same['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
