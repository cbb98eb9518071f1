"""The course's site: nbdev's docs files are there, and the sidebar names every notebook once."""
from pathlib import Path
import yaml

NBS = Path(__file__).resolve().parents[1] / 'nbs'


def _files(entries) -> list[str]:
    out = []
    for e in entries:
        if isinstance(e, str): out.append(e)
        elif isinstance(e, dict): out += _files(e.get('contents', []))
    return out


def test_sidebar_names_every_notebook_once():
    side = _files(yaml.safe_load((NBS / 'sidebar.yml').read_text())['website']['sidebar']['contents'])
    assert len(side) == len(set(side)), sorted(f for f in side if side.count(f) > 1)
    assert set(side) == {p.name for p in NBS.glob('*.ipynb')}
    assert side[0] == 'index.ipynb'


def test_quarto_project():
    q = yaml.safe_load((NBS / '_quarto.yml').read_text())
    assert q['project']['type'] == 'website' and set(q['metadata-files']) == {'nbdev.yml', 'sidebar.yml'}
    assert yaml.safe_load((NBS / 'nbdev.yml').read_text())['project']['output-dir'] == '_docs'
    flow = yaml.safe_load((NBS.parent / '.github' / 'workflows' / 'deploy.yaml').read_text())
    assert 'nbdev_docs' in str(flow['jobs']['deploy']['steps'])
