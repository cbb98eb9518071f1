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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--size', type=int, default=64, help='patch side')
    ap.add_argument('--pairs', type=int, default=8, help='timed pairs of steps (after one warm-up step of each)')
    ap.add_argument('--device', default='auto')
    a = ap.parse_args(argv)
    res = _in_fresh_process(_pairs, (a.size, a.pairs, a.device))
    for k, (m, u) in enumerate(res):
        print(f"pair {k + 1}/{a.pairs}: Mean Teacher {m:.2f} s, UAMT {u:.2f} s, ratio {u / m:.2f}x")
    r = [u / m for m, u in res]
    print(f"UAMT / Mean Teacher at {a.size}^3 (T=8), {a.pairs} pairs: median {statistics.median(r):.2f}x "
          f"(range {min(r):.2f}-{max(r):.2f}x; median steps {statistics.median(m for m, _ in res):.2f} s and "
          f"{statistics.median(u for _, u in res):.2f} s)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
