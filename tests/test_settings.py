"""Every setting out of its range, and every split that leaks or names cases the folder does not hold, is refused by
`brats-ssl` before any work: exit status 2, one `error:` line that names the option, no traceback, and nothing written
(the run folder is not even created). A new option is one row of `BAD`."""
import io
import json
import math
import re
import uuid
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from brats_ssl.cli import main
from brats_ssl.methods import METHODS
from brats_ssl.train import TrainConfig

FAST = settings(max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def ints_below(lo: int):
    "Integers below `lo`, and text that is no integer at all (argparse refuses it)."
    return st.one_of(st.integers(max_value=lo - 1).map(str), st.sampled_from(['2.5', '1e3', 'nan', 'ten']))


def reals_outside(lo: float, hi: float = math.inf, lo_in: bool = True, hi_in: bool = False):
    "Floats outside the interval from `lo` to `hi` (`lo_in`, `hi_in`: whether the ends belong to it), NaN and infinities."
    inside = lambda x: (lo <= x if lo_in else lo < x) and (x <= hi if hi_in else x < hi)
    return st.one_of(st.floats(allow_nan=False).filter(lambda x: not inside(x)).map(repr), st.sampled_from(['nan', 'inf', '-inf']))


def words_except(*good):
    "Short words that are not one of `good` (any case, with spaces around)."
    return st.text('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_ ', max_size=12).filter(
        lambda s: s.strip().lower() not in good)


# valid settings that keep a run short should a bad value ever get through (the rows' own options come after them)
TINY = ['--iterations', 1, '--patch', 16, 16, 16, '--filters', 4, 8, 16, '--T', 2, '--device', 'cpu', '--workers', 0]
FLAGS = ('1', 'true', 'yes', 'on', '0', 'false', 'no', 'off')


# (command, option, bad values (a strategy of one argument, or of a list of them), arguments before the option)
BAD = [
    ('train', '--method', words_except(*METHODS), []),
    ('train', '--iterations', ints_below(1), []),
    ('train', '--batch-labelled', ints_below(1), []),
    ('train', '--batch-unlabelled', ints_below(0), ['--method', 'unet']),
    ('train', '--batch-unlabelled', ints_below(1), ['--method', 'mt']),
    ('train', '--batch-unlabelled', ints_below(1), ['--method', 'uamt']),
    ('train', '--patch', st.one_of(st.lists(st.integers(-64, 64), min_size=3, max_size=3).filter(
        lambda p: not (all(x > 0 and x % 4 == 0 for x in p) and p[1] == p[2])), st.lists(st.integers(1, 8).map(lambda k: 16 * k), min_size=1, max_size=2)), []),
    ('train', '--lr', reals_outside(0, lo_in=False), []),
    ('train', '--momentum', reals_outside(0, 1), []),
    ('train', '--weight-decay', reals_outside(0), []),
    ('train', '--poly-power', reals_outside(0), []),
    ('train', '--filters', st.one_of(st.lists(st.integers(-8, 64), min_size=2, max_size=5).filter(lambda f: min(f) < 1),
                                     st.lists(st.integers(1, 64), min_size=1, max_size=1)), ['--patch', 128, 128, 128]),
    ('train', '--norm', words_except('batch', 'instance', 'none'), []),
    ('train', '--dropout', reals_outside(0, 1), []),
    ('train', '--ce-weight', reals_outside(0), []),
    ('train', '--dice-weight', reals_outside(0), []),
    ('train', '--dice-weight', st.sampled_from(['0', '0.0', '-0.0']), ['--ce-weight', 0]),    # not both 0
    ('train', '--ema-decay', reals_outside(0, 1), []),
    ('train', '--w-max', reals_outside(0), []),
    ('train', '--rampup', ints_below(0), []),
    ('train', '--T', ints_below(1), ['--method', 'uamt']),
    ('train', '--noise-std', reals_outside(0), []),
    ('train', '--noise-clip', reals_outside(0), []),
    ('train', '--chunk', ints_below(1), []),
    ('train', '--fg-prob', reals_outside(0, 1, hi_in=True), []),
    ('train', '--intensity', reals_outside(0, 1, hi_in=True), []),
    ('train', '--val-every', ints_below(1), []),
    ('train', '--overlap', reals_outside(0, 1), []),
    ('train', '--seed', st.one_of(ints_below(0), st.integers(min_value=2**32).map(str)), []),
    ('train', '--workers', ints_below(0), []),
    ('train', '--device', words_except().filter(lambda s: not re.fullmatch(r'auto|cpu|cuda(:\d+)?', s)), []),
    ('train', '--amp', words_except(*FLAGS), []),
    ('train', '--channels-last', words_except(*FLAGS), []),
    ('train', '--keep-heap', words_except(*FLAGS), []),
    ('train', '--modalities', st.sampled_from([['t1'], ['t2', 't1ce'], ['flair', 'flair'], ['flair', 'dwi'], ['']]), []),
    ('train', '--regions', st.sampled_from([['tc'], ['wt', 'tc'], ['et', 'tc', 'wt'], ['wt', 'wt'], ['ncr']]), []),
    ('preprocess', '--spacing', reals_outside(0, lo_in=False), []),
    ('preprocess', '--margin', ints_below(0), []),
]


def run(*args):
    "`brats-ssl ARGS` in this process: (exit status, stdout + stderr). An exception other than argparse's exit is a traceback."
    out = io.StringIO()
    with redirect_stderr(out), redirect_stdout(out):
        try: rc = main([str(a) for a in args])
        except SystemExit as e: rc = e.code                        # argparse: an invalid value for the option's type
        except Exception as e: return 1, f"{out.getvalue()}Traceback (in process): {type(e).__name__}: {e}"
    return rc, out.getvalue()


def tree(folder: Path) -> dict:
    "Every file and folder under `folder`, with size and modification time."
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob('*'))}


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    "A tiny preprocessed folder of four synthetic cases, made once."
    d = tmp_path_factory.mktemp('settings')
    assert run('phantom', d / 'data', '--n', 4, '--size', 40, 40, 28, '--spacing', 6, 6, 6)[0] == 0
    assert run('preprocess', d / 'data', d / 'prep', '--workers', 1)[0] == 0
    (d / 'splits').mkdir()
    return d


def refused(d: Path, command: str, args: list, option: str) -> str:
    "Run `command` into a new output folder under `d`; assert it is refused as the module says. Returns the error line."
    out = d / 'out' / uuid.uuid4().hex
    inputs = [d / 'prep', out, *TINY] if command == 'train' else [d / 'data', out, '--workers', 1]
    before = tree(d)
    rc, text = run(command, *inputs, *args)
    assert rc == 2, text[-2000:]
    assert 'Traceback' not in text, text
    lines = [l for l in text.splitlines() if 'error:' in l]
    assert len(lines) == 1 and lines[0].startswith(f'brats-ssl {command}: error: '), text
    assert option in lines[0] or option.lstrip('-').replace('-', '_') in lines[0], lines[0]
    assert not out.exists(), f"{out} was created"
    assert tree(d) == before, 'files were written or changed'
    return lines[0]


def _id(row):
    row = row.values if hasattr(row, 'values') else row
    return f"{row[0]} {' '.join(map(str, row[3]))} {row[1]}".replace('  ', ' ')


@pytest.mark.parametrize('command,option,bad,before', BAD, ids=[_id(r) for r in BAD])
@FAST
@given(data=st.data())
def test_out_of_range_option_is_refused_before_any_work(prepared, command, option, bad, before, data):
    value = data.draw(bad, label=option)
    args = [*before, option, *value] if isinstance(value, list) else [*before, f'{option}={value}']
    refused(prepared, command, args, option)


@pytest.mark.parametrize('args,message', [
    (['--val-every', 0], 'val_every must be an integer in [1, inf), got 0'),
    (['--method', 'uamt', '--T', 0], 'T must be an integer in [1, inf), got 0'),
    (['--method', 'mt', '--batch-unlabelled', 0], "batch_unlabelled must be an integer in [1, inf) for method 'mt'"),
    (['--lr', -1], 'lr must be a finite number in (0, inf), got -1.0'),
    (['--ema-decay', 1.5], 'ema_decay must be a finite number in [0, 1), got 1.5'),
])
def test_the_settings_that_used_to_crash_or_pass(prepared, args, message):
    assert message in refused(prepared, 'train', args, args[-2])


def test_every_training_setting_has_a_row():
    "A setting added to TrainConfig (and so to `brats-ssl train`) needs a row of bad values here."
    rows = {(r.values if hasattr(r, 'values') else r)[1] for r in BAD}
    assert {'--' + f.name.replace('_', '-') for f in fields(TrainConfig)} <= rows


CASES = st.sampled_from(['labelled', 'unlabelled', 'val', 'test'])


@FAST
@given(lists=st.lists(st.sets(CASES, max_size=4), min_size=5, max_size=5), method=st.sampled_from(['unet', 'mt']))
def test_a_split_that_leaks_or_names_unknown_cases_is_refused(prepared, lists, method):
    "Each of the four cases and one the folder does not hold is put in any of the lists; a split that is not disjoint, or uses the unknown case, is refused naming it."
    ids = json.loads((prepared / 'prep' / 'dataset.json').read_text())['cases'] + ['NotPreprocessed_1']
    split = {k: [c for c, ks in zip(ids, lists) if k in ks] for k in ('labelled', 'unlabelled', 'val', 'test')}
    twice = [c for c, ks in zip(ids, lists) if len(ks) > 1]
    unknown = lists[-1] and not twice
    if not (twice or unknown) or not split['labelled']: return      # a valid split, or no labelled case (a different error)
    f = prepared / 'splits' / f'{uuid.uuid4().hex}.json'
    f.write_text(json.dumps(split))
    line = refused(prepared, 'train', ['--split', f, '--method', method], '--split')
    assert any(c in line for c in (twice or ['NotPreprocessed_1'])), line


def test_split_messages(prepared):
    ids = json.loads((prepared / 'prep' / 'dataset.json').read_text())['cases']
    for split, message in [(dict(labelled=ids[:2], val=ids[1:3]), f'labelled and val share case(s) {ids[1]}'),
                           (dict(labelled=ids[:1], unlabelled=ids[1:3], test=ids[2:4]), f'unlabelled and test share case(s) {ids[2]}'),
                           (dict(labelled=ids[:1], test=['BraTS_none']), 'case(s) BraTS_none not in the preprocessed folder'),
                           (dict(labelled=ids[:1], validation=ids[1:2]), 'unknown list(s) validation'),
                           (dict(labelled=ids[:1], val=ids[1:2]), "method 'mt' needs unlabelled cases")]:
        f = prepared / 'splits' / f'{uuid.uuid4().hex}.json'
        f.write_text(json.dumps(split))
        assert message in refused(prepared, 'train', ['--split', f, '--method', 'mt'], '--method' if 'method' in message else '--split')
