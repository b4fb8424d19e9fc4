"""The light install and the web demo under load: start-up of the commands, install sizes, and `scene-cls serve`
answering several clients at once. Imports no torch itself (the models it serves are made by `bench.speed`)."""
from __future__ import annotations
import importlib.metadata as md, json, os, random, shutil, socket, statistics, subprocess, sys, threading, time
from pathlib import Path
from packaging.requirements import Requirement
from bench.common import *
from harness import run_env, light_env, best_time, free_port, start_server, serve_load

BIN = Path(sys.executable).parent

def tree_mb(folder:Path) -> float:
    return sum(f.stat().st_size for f in Path(folder).rglob('*') if f.is_file() and not f.is_symlink())/2**20

def site_mb(bin_dir:Path) -> float:
    "Installed size of an environment's packages, less pip and setuptools (which every environment has)"
    sp = Path(run_env(bin_dir, 'python', '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])').stdout.strip())
    return tree_mb(sp) - sum(tree_mb(p) for p in sp.glob('pip*')) - sum(tree_mb(p) for p in sp.glob('setuptools*'))

def closure_mb(names:list) -> tuple:
    "(MB, count) of the installed distributions that `names` need, recursively (this environment's, no extras)"
    seen, todo = set(), [n.lower().replace('_', '-') for n in names]
    while todo:
        n = todo.pop()
        if n in seen: continue
        try: d = md.distribution(n)
        except md.PackageNotFoundError: continue
        seen.add(n)
        for r in d.requires or []:
            if 'extra ==' in r: continue
            todo.append(Requirement(r).name.lower().replace('_', '-'))
    size = sum(sum((f.size or 0) for f in (md.distribution(n).files or [])) for n in seen)
    return size/2**20, len(seen)

def bench_light(quick:bool, onnx:Path=None, one:Path=None) -> list:
    "Start-up of the commands in the light and the full install, against importing the whole package (what each command did before); install sizes"
    # quick: the full install only (tests/test_light.py builds a light environment and times the same commands there)
    lb = None if quick else light_env(TMP/'light-venv-runtime', app=False)
    rows, n = [], (1 if quick else 5)
    eager = best_time(n, lambda: run_env(BIN, 'python', '-c', 'import scene_cls.all'))
    cases = [('scene-cls --help', ('--help',)), ('scene-cls predict --help', ('predict', '--help'))]
    if onnx: cases.append(('scene-cls predict model.onnx of one image', ('predict', onnx, one, '--out', TMP/'one.csv', '--no-progress')))
    for name, args in cases:
        for env_name, b in (('light install', lb), ('full install', BIN)):
            what = f'start-up: {name}, {env_name}'
            if b is None: rows.append(not_measured('light', what, 'the command, start to exit / importing the whole package', 'quick mode (tests/test_light.py times it)')); continue
            def go():
                r = run_env(b, 'scene-cls', *args, cwd=TMP)
                if r.returncode: raise RuntimeError(f"{name} in the {env_name}: {r.stderr[-1000:]}")
            rows.append(row('light', what, 'the command, start to exit / importing the whole package (`import scene_cls.all`, what every command imported before)',
                            best_time(n, go), eager, unit='s', higher_better=False, note=f'best of {n}; random-weights Lite0 224px for the ONNX case'))
    what, compares = 'installed size: the light install (requirements-runtime.txt + scene_cls --no-deps)', 'light / full install (`pip install scene_cls`)'
    full_mb, n_full = closure_mb(['scene_cls'])
    if quick: rows.append(not_measured('light', what, compares, 'quick mode (no light environment is built)'))
    else: rows.append(row('light', what, compares, round(site_mb(lb)), round(full_mb), unit='MB', higher_better=False,
                          note=f'site-packages without pip/setuptools; full: the {n_full} distributions scene_cls needs here, torch with the CUDA libraries pip installs on Linux'))
    what, compares = 'installed size: the light install with the web demo (space/requirements-onnx.txt)', 'light + gradio / full install + gradio + onnxruntime'
    if quick: rows.append(not_measured('light', what, compares, 'quick mode (no light environment is built)')); return rows
    light_app_mb = site_mb(light_env(TMP/'light-venv-app', app=True))
    app_mb, n_app = closure_mb(['scene_cls', 'gradio', 'onnxruntime'])
    rows.append(row('light', what, compares, round(light_app_mb), round(app_mb), unit='MB', higher_better=False, note=f'as above; {n_app} distributions in the full case'))
    return rows

# ---------------------------------------------------------------- the web demo under load
def load_rows(kind:str, res:dict, seconds:float, clients:int) -> list:
    note = (f"{res['requests']} requests ({res['bad_files']} with bad files) from {clients} clients for {seconds:.0f}s: {res['wrong']} wrong, "
            f"{res['n_errors']} errors; server memory {res['rss_start_mb']} -> {res['rss_end_mb']} MB; {res['n_left']} files left in the upload folder")
    what = f'scene-cls serve {kind}, random-weights Lite0 224px, --no-gradcam'
    return [row('serve', f'{what}: requests/s', 'requests/s under load', res['rps'], unit='requests/s', note=note),
            row('serve', f'{what}: latency p50 / p95', 'median / 95th percentile, upload to answer', res['p50'], res['p95'], unit='s', higher_better=False, note=f"p99 {res['p99']}s")]
