"`scene-cls clean` as a user runs it: suspects written, the data folder untouched, and `train --exclude` honouring the list."
import hashlib, json, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest
from conftest import run_cli, TINY
from scene_cls.data import CLASSES

def digest(folder:Path) -> dict:
    return {str(f.relative_to(folder)): hashlib.md5(f.read_bytes()).hexdigest() for f in sorted(folder.rglob('*')) if f.is_file()}

@pytest.fixture(scope='module')
def noisy(tmp_path_factory):
    "Synthetic scenes with 6 of 120 training images (5%) moved into a wrong class folder; returns (root, moved)"
    from scene_cls.synthetic import make_synthetic_scenes
    root = make_synthetic_scenes(tmp_path_factory.mktemp('noisy')/'syn', n_train=20, n_valid=3, n_pred=0, size=64)
    rng, moved = np.random.default_rng(1), []
    for f in rng.choice(sorted((root/'seg_train/seg_train').glob('*/*.jpg')), 6, replace=False):
        wrong = CLASSES[(CLASSES.index(f.parent.name) + 1 + rng.integers(5)) % 6]
        dest = f.parent.parent/wrong/f.name; f.rename(dest); moved.append(str(dest.relative_to(root)))
    return root, set(moved)

def test_clean_finds_the_moved_images_and_touches_nothing(noisy, tmp_path):
    root, moved = noisy
    before = digest(root)
    r = run_cli('clean', '--data', root, '--arch', 'tf_efficientnet_lite0', '--size', 64, '--bs', 32, '--out', tmp_path/'c')
    assert r.returncode == 0, r.stderr
    assert digest(root) == before                                          # byte for byte, nothing moved or added
    sus = pd.read_csv(tmp_path/'c/suspects.csv', keep_default_na=False)
    assert len(sus) == 120 and sus.quality.is_monotonic_increasing
    flagged = set(sus.path[sus.label_issue])
    recall, precision = len(flagged & moved)/len(moved), len(flagged & moved)/max(len(flagged), 1)
    assert recall >= 2/3 and precision >= 0.75, (recall, precision, flagged, moved)  # most found, few clean images flagged
    assert len(set(sus.path[:6]) & moved) >= 5, (sus.head(8), moved)                 # and they rank first for review
    listed = [l for l in (tmp_path/'c/exclude.txt').read_text().splitlines() if l and not l.startswith('#')]
    assert set(listed) == flagged
    assert json.loads((tmp_path/'c/summary.json').read_text())['label_issues'] == len(flagged)
    assert 'scene-cls train --exclude' in r.stdout and Path(tmp_path/'c/suspects.png').stat().st_size > 10_000

def test_train_leaves_out_the_excluded_images(noisy, tmp_path):
    root, moved = noisy
    (tmp_path/'ex.txt').write_text('# moved by the test\n' + '\n'.join(sorted(moved)) + '\n')
    r = run_cli('train', '--data', root, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', tmp_path/'run',
                '--exclude', tmp_path/'ex.txt')
    assert r.returncode == 0, r.stderr
    assert f"Train {120 - len(moved)} images, valid 18 ({len(moved)} excluded by" in r.stdout, r.stdout
    state = json.loads((tmp_path/'run/state.json').read_text())
    assert len(state['config']['exclude']) == len(moved)
    (tmp_path/'bad.txt').write_text('seg_train/seg_train/sea/not-there.jpg\n')
    r = run_cli('train', '--data', root, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', tmp_path/'run2',
                '--exclude', tmp_path/'bad.txt')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'match no file' in r.stderr, r.stderr
