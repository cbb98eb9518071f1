"""The slice viewer of nbs/11_viz.ipynb in a real browser: JupyterLab on localhost, headless Chromium driven by Playwright.

A copy of the notebook is opened in JupyterLab, its code cells are run up to the one that displays `slice_viewer`
(cells flagged `#| slow`, `#| notest` or `#| gpu` are skipped, as nbdev_test does), then the widget is used as a
person would: arrow keys on the slider handle, a click on an overlay's check box. After each step the test waits until
the PNG the page shows is the one the kernel rendered for the new state, and compares screenshots of the image.

Needs Debian's Chromium (/usr/bin/chromium, or $CHROMIUM), the Python packages playwright and jupyterlab (no
`playwright install`: Playwright drives the system Chromium). `.ci/run` installs them; elsewhere the test is skipped.
"""
import ast
import base64
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / 'nbs' / '11_viz.ipynb'
CHROMIUM = Path(os.environ.get('CHROMIUM', '/usr/bin/chromium'))
# Chromium on a machine without internet: no background connections, no GPU, no sandbox (root in CI containers)
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']
SKIP_FLAGS = ('slow', 'notest', 'gpu')         # settings.ini tst_flags: cells nbdev_test does not run
STEPS = 3                                      # arrow-key presses on the slider

SERVER_START_S = 60                            # JupyterLab answering on localhost
RUN_CELLS_S = 150                              # the notebook's cells up to the viewer, on 2 busy cores
SYNC_S = 30                                    # a widget change to reach the kernel, and its new image the page


def _requirements():
    "Skip, with the reason, where the browser stack is absent."
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium, or set CHROMIUM)")
    pytest.importorskip('playwright.sync_api', reason='playwright is not installed (pip install playwright)')
    pytest.importorskip('jupyterlab', reason='jupyterlab is not installed (pip install jupyterlab)')
    pytest.importorskip('jupyterlab_widgets', reason='jupyterlab_widgets (the ipywidgets extension) is not installed')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _viewer_cells(nb: dict) -> tuple[list[int], int]:
    "Indices of the code cells to run (up to and including the one that displays the viewer) and the viewer cell's index."
    src = lambda c: ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    at = [i for i, c in enumerate(nb['cells']) if c['cell_type'] == 'code' and 'slice_viewer(' in src(c)
          and src(c).rstrip().splitlines()[-1].strip() == 'viewer']
    assert len(at) == 1, f"{NOTEBOOK.name}: expected one cell that builds and displays `viewer = slice_viewer(...)`, found {len(at)}"
    flagged = lambda c: any(line.replace(' ', '') in {f'#|{f}' for f in SKIP_FLAGS} for line in src(c).splitlines()[:1])
    run = [i for i, c in enumerate(nb['cells'][:at[0] + 1]) if c['cell_type'] == 'code' and not flagged(c)]
    return run, at[0]


class Lab:
    "A JupyterLab server in a subprocess, its log in a file."
    def __init__(self, root: Path, port: int, token: str, log: Path, proc: subprocess.Popen):
        self.root, self.port, self.token, self.log, self.proc = root, port, token, log, proc
        self.url = f'http://127.0.0.1:{port}'

    def api(self, path: str, method: str = 'GET'):
        req = urllib.request.Request(f'{self.url}{path}', method=method, headers={'Authorization': f'token {self.token}'})
        with urllib.request.urlopen(req, timeout=5) as r:
            body = r.read()
            return json.loads(body) if body else None

    def log_tail(self, n: int = 6000) -> str:
        return self.log.read_text(errors='replace')[-n:] if self.log.exists() else '(no log)'


@pytest.fixture
def lab(tmp_path):
    "JupyterLab serving a copy of the visualisation notebook from tmp_path; no request leaves localhost."
    _requirements()
    root, home = tmp_path / 'nb', tmp_path / 'home'
    root.mkdir(); home.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    cfg = home / 'config'
    cfg.mkdir()
    (cfg / 'jupyter_server_config.json').write_text(json.dumps({
        'ServerApp': {'open_browser': False, 'terminals_enabled': False, 'allow_root': True},
        'LabApp': {'news_url': None,                                   # no announcements feed
                   'check_for_updates_class': 'jupyterlab.handlers.announcements.NeverCheckForUpdate',
                   'extension_manager': 'readonly',                    # no PyPI queries
                   'expose_app_in_browser': True},                     # window.jupyterapp, to run cells by command
        'LanguageServerManager': {'autodetect': False}}))
    notes = home / 'settings' / '@jupyterlab' / 'apputils-extension'       # no news prompt, no toasts over the screenshots
    notes.mkdir(parents=True)
    (notes / 'notification.jupyterlab-settings').write_text(json.dumps(
        {'fetchNews': 'false', 'checkForUpdates': False, 'doNotDisturbMode': True}))
    env = {**os.environ, 'JUPYTER_CONFIG_DIR': str(cfg), 'JUPYTER_RUNTIME_DIR': str(home / 'runtime'),
           'JUPYTER_DATA_DIR': str(home / 'data'), 'JUPYTERLAB_SETTINGS_DIR': str(home / 'settings'),
           'JUPYTERLAB_WORKSPACES_DIR': str(home / 'workspaces'), 'IPYTHONDIR': str(home / 'ipython'),
           'JUPYTER_PLATFORM_DIRS': '1', 'PYTHONUNBUFFERED': '1'}
    port, token, log = _free_port(), secrets.token_hex(16), tmp_path / 'jupyterlab.log'
    with open(log, 'wb') as out:
        proc = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ip=127.0.0.1', f'--port={port}',
                                 '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}',
                                 f'--ServerApp.root_dir={root}'],
                                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = Lab(root, port, token, log, proc)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode} before answering:\n{server.log_tail()}")
            try:
                server.api('/api/status'); break
            except (urllib.error.URLError, ConnectionError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {server.url} within {SERVER_START_S} s:\n{server.log_tail()}")
                time.sleep(0.3)
        yield server
    finally:
        try:                                                           # shut the kernels down first, then the server
            for k in server.api('/api/kernels') or []: server.api(f"/api/kernels/{k['id']}", method='DELETE')
        except (OSError, ValueError) as e:                             # a server already gone: SIGTERM below
            print(f'could not shut the kernels down through the API: {e}')
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)                           # jupyter server stops its kernels on SIGTERM
            try: proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL); proc.wait(timeout=10)


# --- in the page ---------------------------------------------------------------------------------------------------

JS_FIND_PANEL = """(path) => {
    const app = window.jupyterapp;
    if (!app || !app.shell) return false;
    const panel = Array.from(app.shell.widgets('main')).find(w => w.context && w.context.path === path);
    if (!panel || !panel.context.isReady || !panel.sessionContext.session || !panel.sessionContext.session.kernel) return false;
    if (panel.sessionContext.session.kernel.status !== 'idle' || !panel.content.widgets.length) return false;
    window.__panel = panel;
    return true;
}"""

JS_RUN_CELLS = """(indices) => {
    const app = window.jupyterapp, nb = window.__panel.content;
    window.__runResult = undefined;
    (async () => {
        for (const i of indices) {
            nb.activeCellIndex = i;
            const ok = await app.commands.execute('notebook:run-cell');
            if (!ok) { window.__runResult = {failed: i, outputs: JSON.stringify(nb.widgets[i].model.sharedModel.toJSON().outputs)}; return; }
        }
        window.__runResult = {failed: -1};
    })().catch(e => { window.__runResult = {failed: -2, outputs: String(e)}; });
}"""

JS_FULLY_VISIBLE = """(img) => {
    const r = img.getBoundingClientRect(), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
    return r.width > 100 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && r.right <= window.innerWidth
        && document.elementFromPoint(x, y) === img && document.elementFromPoint(r.left + 2, r.bottom - 2) === img
        && document.elementFromPoint(r.right - 2, r.top + 2) === img;
}"""

JS_KERNEL_STATUS = "() => window.__panel.sessionContext.session.kernel.status"

JS_USER_EXPRESSIONS = """async (exprs) => {
    const k = window.__panel.sessionContext.session.kernel;
    const reply = await k.requestExecute({code: '', silent: true, store_history: false, user_expressions: exprs}).done;
    return reply.content.user_expressions;
}"""

JS_IMAGE_BYTES = """async (img) => {
    if (!img.complete || !img.naturalWidth || !img.src.startsWith('blob:')) return null;
    try {
        const b = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
        let s = '';
        for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode.apply(null, b.subarray(i, i + 8192));
        return btoa(s);
    } catch (e) { return null; }                       // the view replaced (and revoked) this blob meanwhile
}"""


def _kernel(page, **exprs):
    "Values of Python expressions evaluated in the notebook's kernel."
    res = page.evaluate(JS_USER_EXPRESSIONS, exprs)
    out = {}
    for k, r in res.items():
        assert r['status'] == 'ok', f"kernel expression {exprs[k]!r} failed: {r.get('ename')}: {r.get('evalue')}"
        out[k] = ast.literal_eval(r['data']['text/plain'])
    return out


def _sync(page, image, readout, expect_value: int, what: str) -> dict:
    """Wait until the kernel is idle, its slider value is `expect_value`, the readout says so, and the page shows exactly
    the PNG the kernel holds in the viewer's Image widget (so a screenshot shows the state the kernel rendered)."""
    deadline, last = time.monotonic() + SYNC_S, {}
    while time.monotonic() < deadline:
        if page.evaluate(JS_KERNEL_STATUS) == 'idle':
            last = _kernel(page, value='viewer.children[1].value',
                           png='__import__("hashlib").sha256(viewer.children[3].value).hexdigest()',
                           boxes='{c.children[1].description: c.children[1].value for c in viewer.children[2].children}')
            shown = image.evaluate(JS_IMAGE_BYTES)
            last['shown'] = shown and hashlib.sha256(base64.b64decode(shown)).hexdigest()
            last['readout'] = readout.inner_text().strip()
            if last['value'] == expect_value and last['readout'] == str(expect_value) and last['shown'] == last['png']:
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: the page did not show the kernel's image for slice {expect_value} within {SYNC_S} s; last seen {last}")


def _errors(outputs) -> str:
    "The error (or, failing that, the text) in a cell's outputs, as JSON from the page."
    try: outs = json.loads(outputs)
    except (TypeError, ValueError): return str(outputs)[:3000]
    errs = [f"{o['ename']}: {o['evalue']}" for o in outs if o.get('output_type') == 'error']
    return '; '.join(errs) or json.dumps(outs)[:3000]


def _pixels(png: bytes):
    import numpy as np
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert('RGB')).astype(int)


def _changed(a: bytes, b: bytes) -> float:
    "Fraction of pixels that differ between two screenshots of the same element."
    pa, pb = _pixels(a), _pixels(b)
    assert pa.shape == pb.shape, f"the image element changed size: {pa.shape} -> {pb.shape}"
    return float((pa != pb).any(-1).mean())


def _cyan_lost(a: bytes, b: bytes) -> float:
    "Fraction of the pixels changed from `a` to `b` that became less cyan (UNet3D's colour in the viewer: G + B - 2R drops)."
    pa, pb = _pixels(a), _pixels(b)
    changed = (pa != pb).any(-1)
    cyan = lambda p: (p[..., 1] + p[..., 2] - 2 * p[..., 0])[changed]
    return float((cyan(pa) > cyan(pb)).mean()) if changed.any() else 0.0


def test_slice_viewer_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright
    nb = json.loads(NOTEBOOK.read_text())
    run, at = _viewer_cells(nb)
    console, t0 = [], time.monotonic()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={'width': 1200, 'height': 1400}, device_scale_factor=1)
            page.set_default_timeout(SYNC_S * 1000)
            page.on('console', lambda m: console.append(f'{m.type}: {m.text}'))
            page.on('pageerror', lambda e: console.append(f'pageerror: {e}'))
            page.goto(f'{lab.url}/lab/tree/{NOTEBOOK.name}?reset&token={lab.token}', wait_until='domcontentloaded')
            page.wait_for_function(JS_FIND_PANEL, arg=NOTEBOOK.name, timeout=90_000, polling=250)
            t_open = time.monotonic()

            # run the notebook up to the viewer cell, one cell after the other, as Shift+Enter would
            page.evaluate(JS_RUN_CELLS, run)
            page.wait_for_function('window.__runResult !== undefined', timeout=RUN_CELLS_S * 1000, polling=500)
            res = page.evaluate('window.__runResult')
            assert res['failed'] == -1, f"cell {res['failed']} of {NOTEBOOK.name} failed: {_errors(res.get('outputs'))}"
            t_run = time.monotonic()

            cell = page.locator(f'.jp-Notebook .jp-Cell[data-windowed-list-index="{at}"]')
            viewer = cell.locator('.jp-OutputArea-output .widget-vbox').first
            image = viewer.locator('img').first
            slider = viewer.locator('.widget-hslider').first
            handle, readout = slider.locator('.noUi-handle').first, slider.locator('.widget-readout').first
            expect(slider.locator('.widget-label').first).to_have_text('slice')
            image.scroll_into_view_if_needed()
            assert image.evaluate(JS_FULLY_VISIBLE), f'the image is not entirely in view, screenshots would miss part of it: {image.bounding_box()}'
            k = _kernel(page, v='viewer.children[1].value', max='viewer.children[1].max')
            start = k['v']
            assert 0 <= start and start + STEPS <= k['max'], k

            def shot(name: str) -> bytes:                              # kept in tmp_path, to look at when a check fails
                png = image.screenshot()
                (tmp_path / f'viewer_{name}.png').write_bytes(png)
                return png

            s0 = _sync(page, image, readout, start, 'first render')
            assert all(s0['boxes'].values()), s0['boxes']
            shot0 = shot('start')
            time.sleep(0.5)
            assert _changed(shot0, image.screenshot()) == 0, 'two screenshots of an unchanged viewer differ'

            # the slider: focus its handle, press the right arrow STEPS times
            handle.focus()
            for _ in range(STEPS): page.keyboard.press('ArrowRight')
            s1 = _sync(page, image, readout, start + STEPS, 'after moving the slider')
            assert s1['png'] != s0['png'], f'the kernel did not re-render the image when the slider moved to {start + STEPS}'
            shot1 = shot('moved')
            moved = _changed(shot0, shot1)
            assert moved > 0.01, f'the slice image hardly changed after moving the slider ({moved:.2%} of pixels)'

            # an overlay off: click the UNet3D check box
            box = viewer.get_by_role('checkbox', name='UNet3D')
            expect(box).to_be_checked()
            box.click()
            expect(box).not_to_be_checked()
            deadline = time.monotonic() + SYNC_S
            while (s2 := _sync(page, image, readout, start + STEPS, 'after switching UNet3D off'))['boxes']['UNet3D']:
                assert time.monotonic() < deadline, 'the kernel never saw the UNet3D check box switched off'
                time.sleep(0.25)
            assert s2['boxes'] == {**s1['boxes'], 'UNet3D': False}
            shot2 = shot('unet_off')
            off = _changed(shot1, shot2)
            assert 0 < off < moved, f'switching UNet3D off changed {off:.2%} of the pixels (slider move: {moved:.2%})'
            lost = _cyan_lost(shot1, shot2)
            assert lost > 0.9, f'UNet3D is drawn cyan: switching it off should make the changed pixels less cyan, {lost:.0%} did'
            print(f"open {t_open - t0:.1f} s, run {len(run)} cells {t_run - t_open:.1f} s, interact {time.monotonic() - t_run:.1f} s; "
                  f"slice {start} -> {start + STEPS}: {moved:.1%} of pixels changed, UNet3D off: {off:.1%}")
        except BaseException:
            print('--- browser console (last 40) ---', *console[-40:], '--- JupyterLab log ---', lab.log_tail(), sep='\n')
            raise
        finally:
            browser.close()
