"`scripts/intel_sample.py` rebuilds the real images of the README's results from the Kaggle dataset's layout, byte for byte."
import csv, hashlib, subprocess, sys
from pathlib import Path
import pytest
from conftest import REPO, INTEL_SAMPLE

SHARED = INTEL_SAMPLE.parent

def test_the_list_names_the_shared_images():
    rows = list(csv.DictReader(open(REPO/'data'/'intel-images.csv')))
    counts = {s: sum(r['set'] == s for r in rows) for s in ('sample-train', 'sample-valid', 'extra', 'unlabelled')}
    assert counts == {'sample-train': 900, 'sample-valid': 300, 'extra': 1200, 'unlabelled': 3000}, counts
    assert len({r['file'] for r in rows}) == len(rows)                         # each image once

def test_rebuilt_from_the_kaggle_layout_byte_for_byte(tmp_path):
    if not (SHARED/'intel-extra').is_dir() or not (SHARED/'intel-unlabelled').is_dir(): pytest.skip(f'the real images are not at {SHARED}')
    train = tmp_path/'kaggle'/'seg_train'/'seg_train'
    rows = list(csv.DictReader(open(REPO/'data'/'intel-images.csv')))
    src = {'sample-train': SHARED/'intel-sample'/'train', 'sample-valid': SHARED/'intel-sample'/'valid', 'extra': SHARED/'intel-extra'}
    for r in rows:   # the dataset as Kaggle ships it: every image in its class folder of seg_train (unlabelled ones: some class)
        f = src[r['set']]/r['class']/r['file'] if r['class'] else SHARED/'intel-unlabelled'/r['file']
        d = train/(r['class'] or 'forest'); d.mkdir(parents=True, exist_ok=True); (d/r['file']).symlink_to(f)
    decoy = next(r for r in rows if r['set'] == 'unlabelled')   # the same name in another class, other bytes: not taken for it
    (train/'sea').mkdir(exist_ok=True); (train/'sea'/decoy['file']).write_bytes(b'not that image')
    run = lambda: subprocess.run([sys.executable, REPO/'scripts'/'intel_sample.py', '--from', tmp_path/'kaggle', '--to', tmp_path/'data'],
                                 capture_output=True, text=True, timeout=300)
    r = run()
    assert r.returncode == 0 and r.stdout.startswith('5400 images copied, 0 already there, 0 missing'), r.stdout + r.stderr
    for name in ('intel-sample', 'intel-extra', 'intel-unlabelled'):
        got = {f.relative_to(tmp_path/'data'/name): hashlib.md5(f.read_bytes()).hexdigest() for f in (tmp_path/'data'/name).rglob('*.jpg')}
        want = {f.relative_to(SHARED/name): hashlib.md5(f.read_bytes()).hexdigest() for f in (SHARED/name).rglob('*.jpg')}
        assert got == want, name
    r = run()
    assert r.returncode == 0 and r.stdout.startswith('0 images copied, 5400 already there'), r.stdout + r.stderr
    (train/'street'/next(x for x in rows if x['class'] == 'street')['file']).unlink()   # an image the dataset lacks: named
    (tmp_path/'data'/'intel-sample').rename(tmp_path/'old')
    r = run()
    assert r.returncode == 1 and 'missing' in r.stdout and 'not in the dataset' in r.stderr, r.stdout + r.stderr
