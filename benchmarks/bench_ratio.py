"""The UAMT / Mean Teacher step-time ratio, measured so that the noise of a shared machine cancels.

    python benchmarks/bench_ratio.py [--size 64] [--pairs 8] [--device auto]

One fresh process builds a Mean Teacher and a UAMT run (T=8, batch 2 labelled + 2 unlabelled, UNet3D(16..256)) as
`bench.py` does, warms each up with one step, then times `--pairs` pairs of steps, a Mean Teacher step right before a
UAMT step, so that both see the same machine. It prints each pair and the median of the pairs' ratios.
"""
from __future__ import annotations
import argparse, statistics, sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import _in_fresh_process, _stepper  # noqa: E402


def _pairs(args) -> list[tuple[float, float]]:
    size, pairs, device = args
    (mt, _, heap), (uamt, _, _) = _stepper('mt', size, device), _stepper('uamt', size, device)
    with heap:
        mt(); uamt()                                                  # warm-up
        return [(mt(), uamt()) for _ in range(pairs)]


def report_pairs(res: list[tuple[float, float]], a: str, b: str, what: str) -> None:
    "Print each timed pair (a step of `a`, then one of `b`) and the median of the ratios b / a with their range."
    for k, (x, y) in enumerate(res):
        print(f"pair {k + 1}/{len(res)}: {a} {x:.3f} s, {b} {y:.3f} s, ratio {y / x:.2f}")
    r = [y / x for x, y in res]
    print(f"{what}, {len(res)} pairs: {b} / {a} median {statistics.median(r):.2f}x (range {min(r):.2f}-{max(r):.2f}x; "
          f"median steps {statistics.median(x for x, _ in res):.3f} s and {statistics.median(y for _, y in res):.3f} s)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--size', type=int, default=64, help='patch side')
    ap.add_argument('--pairs', type=int, default=8, help='timed pairs of steps (after one warm-up step of each)')
    ap.add_argument('--device', default='auto')
    a = ap.parse_args(argv)
    res = _in_fresh_process(_pairs, (a.size, a.pairs, a.device))
    report_pairs(res, 'Mean Teacher', 'UAMT', f"UAMT / Mean Teacher at {a.size}^3 (T=8)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
