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
from common import in_fresh_process, stepper, report_pairs  # noqa: E402


def _pairs(args) -> list[tuple[float, float]]:
    size, pairs, device = args
    (mt, _, heap), (uamt, _, _) = stepper('mt', size, device), stepper('uamt', size, device)
    with heap:
        mt(); uamt()                                                  # warm-up
        return [(mt(), uamt()) for _ in range(pairs)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--size', type=int, default=64, help='patch side')
    ap.add_argument('--pairs', type=int, default=8, help='timed pairs of steps (after one warm-up step of each)')
    ap.add_argument('--device', default='auto')
    a = ap.parse_args(argv)
    res = in_fresh_process(_pairs, (a.size, a.pairs, a.device))
    report_pairs(res, 'Mean Teacher', 'UAMT', f"UAMT / Mean Teacher at {a.size}^3 (T=8)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
