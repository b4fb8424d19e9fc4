"""What every benchmark shares, and nothing heavy (no torch): where the data and the scratch folder are, a row of
the results table, real or synthetic files, peak memory."""
from __future__ import annotations
import json, os, resource
from pathlib import Path
from scene_cls.synthetic import make_synthetic_scenes

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get('SCENE_CLS_SHARED', REPO.parent/'shared'/'data'))
SAMPLE, EXTRA, UNLABELLED = SHARED/'intel-sample', SHARED/'intel-extra', SHARED/'intel-unlabelled'
TMP = Path(os.environ.get('SCENE_CLS_BENCH_TMP', '/tmp/scene_cls_bench'))
os.environ.setdefault('SCENE_CLS_CACHE', str(TMP/'stores'))   # the image stores the benchmarks build, not in the user's cache

def rss_mb() -> float:
    "This process's peak resident memory in MB: VmHWM, which (unlike ru_maxrss) a fresh process does not inherit from its parent"
    try: return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])/1024
    except (OSError, StopIteration): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024
def rate(n, secs): return round(n/secs, 2)

def row(group, what, compares, ours=None, plain=None, unit='images/s', note='', higher_better=True):
    "One line of the results table; `ratio` is ours / plain (plain / ours for times, so above 1 is always better for us)"
    r = dict(group=group, what=what, compares=compares, ours=ours, plain=plain, unit=unit, note=note, ratio=None)
    if isinstance(ours, (int, float)) and isinstance(plain, (int, float)) and ours and plain:
        r['ratio'] = round(ours/plain if higher_better else plain/ours, 3)
    print(json.dumps(r), flush=True)
    return r

def not_measured(group, what, compares, why): return row(group, what, compares, note=f'not measured: {why}')

def real_files(folder:Path, n:int) -> list:
    "`n` real images spread over the classes of `folder` (sorted, taken at an even stride), or [] when absent"
    fs = sorted(folder.rglob('*.jpg')) if folder.is_dir() else []
    return fs[::max(1, len(fs)//n)][:n] if len(fs) >= n else []

def synthetic(n_train=40, n_valid=10, n_pred=0, size=150) -> Path:
    return make_synthetic_scenes(TMP/f'syn_{n_train}_{n_valid}_{n_pred}_{size}', n_train=n_train, n_valid=n_valid, n_pred=n_pred, size=size)

