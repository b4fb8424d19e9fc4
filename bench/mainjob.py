"""The README's main job, run exactly as the README writes it, after the README's data step, for three seeds.

The commands run in a scratch folder laid out as a user's clone is after `python scripts/intel_sample.py`
(`data/intel-sample`, `data/intel-extra`: here links to the real images beside the repository), so that each row's
`argv` is the command a user types, word for word. Seed 42 is the README's command itself (the default seed); seeds 0
and 1 add `--seed` and another `--out`.
"""
from __future__ import annotations
import json, os, shlex, shutil, subprocess, sys, time
from pathlib import Path
from bench.common import *

TRAIN = ['scene-cls', 'train', '--data', 'data/intel-sample', '--arch', 'tf_efficientnet_lite0', '--bs', '32', '--out', 'runs/quickstart']
EVAL = ['scene-cls', 'interpret', 'runs/quickstart/model.pkl', 'data/intel-extra', '--out', 'runs/quickstart/extra']
SEEDS = (42, 0, 1)

def commands(seed:int) -> tuple:
    "(train, evaluate) argv of the main job for `seed`: the README's own for 42"
    if seed == 42: return TRAIN, EVAL
    out = f'runs/quickstart-seed{seed}'
    return ([*TRAIN[:-1], out, '--seed', str(seed)], [EVAL[0], EVAL[1], f'{out}/model.pkl', EVAL[3], '--out', f'{out}/extra'])

def _run(argv:list, cwd:Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent/argv[0]
    r = subprocess.run([str(exe), *argv[1:]], capture_output=True, text=True, cwd=cwd, timeout=7200,
                       env={**os.environ, 'MPLBACKEND': 'Agg', 'PYTHONUNBUFFERED': '1'})
    if r.returncode: raise RuntimeError(f"{shlex.join(argv)} failed ({r.returncode}): {r.stderr[-2000:]}")
    return r

def bench_mainjob(quick:bool) -> list:
    "The README's main job, exactly as written, seeds 42, 0, 1: accuracy on intel-extra and valid, training seconds"
    what = "the README's main job: `scene-cls train --data data/intel-sample --arch tf_efficientnet_lite0 --bs 32` (RunConfig's recipe), then `scene-cls interpret` on intel-extra"
    compares = 'accuracy on intel-extra (1,200 untouched images), mean of 3 seeds'
    if quick: return [not_measured('mainjob', what, compares, '--quick (training takes minutes)')]
    if not (SAMPLE/'train').is_dir() or not EXTRA.is_dir(): return [not_measured('mainjob', what, compares, f'no real images at {SHARED}')]
    work = TMP/'mainjob'; shutil.rmtree(work, ignore_errors=True); (work/'data').mkdir(parents=True)
    for name, src in (('intel-sample', SAMPLE), ('intel-extra', EXTRA)): (work/'data'/name).symlink_to(src)
    runs = []
    for seed in SEEDS:
        train, evaluate = commands(seed)
        t = time.time(); _run(train, work); wall = time.time() - t
        run = json.loads((work/train[train.index('--out') + 1]/'run.json').read_text())
        _run(evaluate, work)
        m = json.loads((work/evaluate[-1]/'metrics.json').read_text())
        runs.append(dict(seed=seed, extra=m['accuracy'], n_extra=m['n'], valid=run['accuracy'], n_valid=run['n_valid'],
                         train_seconds=run['train_seconds'], wall_seconds=round(wall, 1), argv=[train, evaluate]))
        print(json.dumps(runs[-1]), flush=True)
    mean = lambda k: round(sum(r[k] for r in runs)/len(runs), 4)
    rng = lambda k: f"{min(r[k] for r in runs):.1%}-{max(r[k] for r in runs):.1%}"
    note = (f"intel-extra {mean('extra'):.1%} ({rng('extra')}), valid {mean('valid'):.1%} ({rng('valid')}); "
            f"{mean('train_seconds'):.0f}s of training ({', '.join(str(round(r['train_seconds'])) for r in runs)}), "
            f"{mean('wall_seconds'):.0f}s for the whole train command; seeds {', '.join(str(r['seed']) for r in runs)}; "
            f"{os.cpu_count()} CPU cores, no GPU")
    return [dict(row('mainjob', what, compares, mean('extra'), None, unit='accuracy', note=note),
                 argv=[TRAIN, EVAL], runs=runs, readme=True)]
