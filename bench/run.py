"""Every benchmark of scene_cls, each beside the plain alternative, in one run on the machine it is on.

    python -m bench                 # everything (about 25 minutes on 2 CPU cores)
    python -m bench --quick         # a small version of every row, under 2 minutes: checks the machinery, not results
    python -m bench --only train,infer --out /tmp/b

Writes `results.json` (rows, the command, the date, the hardware, versions) and `results.md` (the table that the
README includes) to `--out` (default `bench/`). Every row says what it compares and gives ours / plain as a ratio.
Rows that cannot be measured here (the GPU rows on a CPU, the real-image rows without the sample) say why instead
of giving a number. Real images come from `../shared/data/intel-sample` and `intel-extra` beside the repository.

The groups live in a module per kind of measurement: `bench/speed.py` (train, infer, onnx, app, augment, dataloader,
light, serve), `bench/memory.py` (store, memory), `bench/accuracy.py` (accuracy, levers, clean), `bench/gpu.py`; what
they share is `bench/common.py` (no torch) and `bench/stack.py` (the training stack); `bench/light.py` runs the light
install and the server under load without torch. This file puts the rows together.
"""
from __future__ import annotations
import argparse, datetime, json, os, platform, sys, time
from pathlib import Path
import fastai, torch
from bench.common import *
from bench.speed import *
from bench.memory import *
from bench.accuracy import *
from bench.gpu import *
from bench.mainjob import *

# ---------------------------------------------------------------- the table
GROUPS = dict(mainjob=bench_mainjob, train=bench_train, infer=bench_infer, onnx=bench_onnx, app=bench_app, augment=bench_augment, dataloader=bench_dataloader, store=bench_store, memory=bench_memory,
              accuracy=bench_accuracy, levers=bench_levers, clean=bench_clean, light=bench_light, serve=bench_serve, gpu=bench_gpu)

def _cell(v, unit):
    if v is None: return ''
    if unit == 's' and v < 10: return f'{v:.3f}'
    return f'{v:.1%}' if unit in ('accuracy', 'share') else (f'{v:,.0f} {unit}' if unit == 'MB' else f'{v:,.1f}')

def command(r:dict) -> str:
    "The command that produced row `r`, as a person types it"
    import shlex
    argv = r.get('argv') or ['python', '-m', 'bench', '--only', r['group']]
    return ' && '.join(map(shlex.join, argv)) if argv and isinstance(argv[0], list) else shlex.join(argv)

def markdown(res:dict) -> str:
    h = res['hardware']
    head = (f"Measured {res['date']} on {h['cpu_count']} CPU core(s), {h['gpu'] or 'no GPU'}, torch {res['versions']['torch']}, "
            f"{h['torch_threads']} torch threads, with `{res['command']}`{' (QUICK: machinery check, not results)' if res['quick'] else ''}.\n\n")
    lines = ['| what | compares | ours | plain | ours / plain | note | command |', '|---|---|---|---|---|---|---|']
    for r in res['rows']:
        lines.append(f"| {r['what']} | {r['compares']} | {_cell(r['ours'], r['unit'])} | {_cell(r['plain'], r['unit'])} | "
                     f"{'' if r['ratio'] is None else format(r['ratio'], '.2f')} | {r['note']} | `{command(r)}` |")
    return head + '\n'.join(lines) + '\n\nImages/s unless the row says otherwise; above 1 in the ratio column is better for scene_cls.\n'

def summary(res:dict) -> str:
    "The rows the README shows (`readme=True`), each with its result and the commands that produced it"
    lines = ['| what | result | measured with |', '|---|---|---|']
    for r in res['rows']:
        if not r.get('readme'): continue
        lines.append(f"| {r['what']} | **{_cell(r['ours'], r['unit'])}** {r['compares']}; {r['note']} | `{command(r)}` |")
    return '\n'.join(lines) + f"\n\nEvery row of `bench/results.md` ({len(res['rows'])} rows: speed, memory, accuracy levers, the web demo) says which run measured it.\n"

def kept_row(r:dict, old:dict) -> dict:
    "A row of an earlier run kept in this one, its note saying which run measured it (machines and code change)"
    tag = f"kept from the run of {old['date']}"
    return r if 'kept from the run of' in r['note'] or r['note'].startswith('not measured') else {**r, 'note': f"{r['note']}; {tag}".lstrip('; ')}

def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m bench', description=__doc__.split('\n\n')[0])
    p.add_argument('--quick', action='store_true', help='a small version of every row (under 2 minutes)')
    p.add_argument('--only', default=','.join(GROUPS), help=f"comma-separated groups: {','.join(GROUPS)}")
    p.add_argument('--out', default=str(REPO/'bench'), help='folder for results.json and results.md')
    p.add_argument('--memory-child', nargs=3, help=argparse.SUPPRESS)
    p.add_argument('--train-child', nargs=5, help=argparse.SUPPRESS)
    p.add_argument('--store-child', nargs=3, help=argparse.SUPPRESS)
    p.add_argument('--lever-child', nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.lever_child:
        name, seed, quick = a.lever_child; print(json.dumps(lever_child(name, int(seed), quick == '1'))); return
    if a.store_child:
        kind, cache, quick = a.store_child; print(json.dumps(store_child(kind, cache == '1', quick == '1'))); return
    if a.memory_child:
        kind, n, free = a.memory_child; print(json.dumps(memory_child(kind, int(n), free == '1'))); return
    if a.train_child:
        arch, size, aug, frozen, quick = a.train_child
        print(json.dumps(train_case(arch, int(size), aug == '1', frozen == '1', quick == '1'))); return
    groups = a.only.split(',')
    bad = [g for g in groups if g not in GROUPS]
    if bad: p.error(f"unknown group(s) {bad}: choose from {list(GROUPS)}")
    TMP.mkdir(parents=True, exist_ok=True)
    t0, rows, failed = time.time(), [], []
    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    kept = []        # rows of the groups not run now, from an earlier run of the same kind (quick or not)
    if (out/'results.json').exists() and set(groups) != set(GROUPS):
        old = json.loads((out/'results.json').read_text())
        if old.get('quick') == a.quick: kept = [kept_row(r, old) for r in old['rows'] if r['group'] not in groups]
    for g in groups:
        try: rows += [{'argv': ['python', '-m', 'bench', '--only', g] + (['--quick'] if a.quick else []), **r} for r in GROUPS[g](a.quick)]
        except Exception as e:
            failed.append(g); rows.append(row(g, f'{g} benchmarks', '', note=f'FAILED: {type(e).__name__}: {e}'))
        res = dict(command='python -m bench ' + ' '.join(argv if argv is not None else sys.argv[1:]), quick=a.quick,
                   date=datetime.date.today().isoformat(), seconds=round(time.time() - t0),
                   hardware=dict(cpu_count=os.cpu_count(), torch_threads=torch.get_num_threads(), machine=platform.machine(),
                                 processor=platform.processor(), gpu=torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                                 gpu_count=torch.cuda.device_count()),
                   versions=dict(python=platform.python_version(), torch=torch.__version__, fastai=fastai.__version__),
                   rows=sorted(kept + rows, key=lambda r: list(GROUPS).index(r['group'])))
        (out/'results.json').write_text(json.dumps(res, indent=1))   # after every group: a later failure loses nothing
        (out/'results.md').write_text(markdown(res)); (out/'summary.md').write_text(summary(res))
    print(f"{len(res['rows'])} rows ({len(rows)} measured now) in {res['seconds']}s -> {out/'results.json'}, {out/'results.md'}")
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main()
