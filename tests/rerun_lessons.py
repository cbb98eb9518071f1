"""Re-run lessons in place, so that their saved outputs are what the current code prints.

    python tests/rerun_lessons.py                      # every lesson in nbs/
    python tests/rerun_lessons.py nbs/06_methods.ipynb # some of them
    BRATS_SSL_OUT=RUN python tests/rerun_lessons.py --run slow nbs/14_real_mri.ipynb   # slow cells too, on a finished run

Each notebook runs top to bottom in a fresh shell from its own folder, as `nbdev_test` runs it. Cells flagged with one of
settings.ini's `tst_flags` (`slow`, `gpu`, `notest`) are not run and keep the outputs they have (a slow cell's output is
refreshed with `--run slow`, on the data and the finished run it names). An error stops that notebook, which is then left unchanged.
Then `nbdev_clean` strips metadata. Run it before committing a lesson.
"""
from __future__ import annotations
import configparser, os, re, subprocess, sys, time
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

ROOT = Path(__file__).resolve().parents[1]


def _flags(source: str) -> set[str]:
    "The nbdev directive words of a cell (`#| slow` gives {'slow'})."
    return {w for line in source.splitlines() if line.startswith('#|') for w in re.split(r'[\s:]+', line[2:].strip()) if w}


def _drop_widgets(nb) -> None:
    """Live widgets out of the saved notebook, since their state is not saved: a progress bar's display is dropped, a
    returned widget (a viewer) keeps its text."""
    nb.metadata.pop('widgets', None)
    view = 'application/vnd.jupyter.widget-view+json'
    for cell in nb.get('cells', []):
        if 'outputs' not in cell: continue
        cell['outputs'] = [o for o in cell['outputs'] if not (o.get('output_type') == 'display_data' and view in o.get('data', {}))]
        for o in cell['outputs']: o.get('data', {}).pop(view, None)


def rerun(fn: Path, skip: set[str]) -> float:
    "Run `fn` in place; returns the seconds taken. Raises RuntimeError (the notebook untouched) on an error."
    nb = read_nb(fn)
    keep = lambda cell: cell.cell_type != 'code' or bool(_flags(cell.source) & skip) or 'eval: false' in cell.source
    t0, cwd = time.time(), os.getcwd()
    shell = CaptureShell(fn, mpl_format='png')           # plain PNG, as Jupyter saves it; execnb's default 'retina' doubles each figure
    try:
        os.chdir(fn.parent)
        shell.run_all(nb, exc_stop=True, preproc=keep)
    except Exception as e:
        raise RuntimeError(f"{fn}: {shell.prettytb(fname=fn)}") from e
    finally: os.chdir(cwd)
    _drop_widgets(nb)
    write_nb(nb, fn)
    return time.time() - t0


def main(argv=None) -> int:
    os.environ.setdefault('TQDM_DISABLE', '1')         # progress bars are for live runs, not for saved outputs
    cfg = configparser.ConfigParser(); cfg.read(ROOT/'settings.ini')
    skip = set(cfg['DEFAULT'].get('tst_flags', '').split())
    args = list(argv if argv is not None else sys.argv[1:])
    while '--run' in args:                              # --run FLAG: run the cells with that flag as well
        i = args.index('--run'); skip.discard(args[i + 1]); del args[i:i + 2]
    files = [Path(a).resolve() for a in args] or sorted((ROOT/'nbs').glob('[0-9]*.ipynb'))
    failed = []
    for fn in files:
        try: print(f"{fn.name}: {rerun(fn, skip):.1f} s", flush=True)
        except RuntimeError as e: failed.append(fn.name); print(e, file=sys.stderr)
    subprocess.run(['nbdev_clean'], cwd=ROOT, check=True)
    if failed: print(f"not rerun (errors): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
