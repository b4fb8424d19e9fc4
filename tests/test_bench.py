"`python -m bench --quick`: every group runs and writes results of the documented shape (the numbers are not judged)."
import json, os, subprocess, sys
from pathlib import Path
from conftest import REPO

ROW_KEYS = {'group', 'what', 'compares', 'ours', 'plain', 'unit', 'note', 'ratio'}

def test_quick_bench_writes_results_of_the_documented_shape(tmp_path):
    r = subprocess.run([sys.executable, '-m', 'bench', '--quick', '--out', tmp_path], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, 'MPLBACKEND': 'Agg', 'SCENE_CLS_BENCH_TMP': str(tmp_path/'work')}, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path/'results.json').read_text())
    assert {'command', 'quick', 'date', 'seconds', 'hardware', 'versions', 'rows'} <= set(res) and res['quick'] is True
    assert {'cpu_count', 'torch_threads', 'gpu', 'gpu_count'} <= set(res['hardware'])
    assert {'python', 'torch', 'fastai'} <= set(res['versions'])
    from bench.run import GROUPS
    assert {r['group'] for r in res['rows']} == set(GROUPS)            # every group has its rows
    for row in res['rows']:
        assert ROW_KEYS <= set(row) and set(row) - ROW_KEYS <= {'argv', 'runs', 'readme'}, row   # argv: the command that made it
        assert 'FAILED' not in row['note'], row
        measured = isinstance(row['ours'], (int, float))
        assert measured or row['note'].startswith('not measured: '), row     # a number, or why there is none
        if measured and isinstance(row['plain'], (int, float)): assert row['ratio'] is not None and row['ratio'] > 0, row
    md = (tmp_path/'results.md').read_text()
    assert 'QUICK' in md and md.count('\n|') >= len(res['rows']) + 1
    if not __import__('torch').cuda.is_available():
        assert all(r['note'] == 'not measured: no GPU' for r in res['rows'] if r['group'] == 'gpu')

def test_the_gpu_rows_code_runs_on_the_cpu(synthetic, tmp_path, monkeypatch):
    "Every line of the GPU group that a CPU can run, on tiny settings: the numbers are not kept (no GPU figure without a GPU)"
    import bench.gpu as b
    monkeypatch.setattr(b, 'TMP', tmp_path)
    steps = b.gpu_step_rates(synthetic, 'cpu', size=32, bs=8, warmup=1, n=1)
    assert set(steps) == {(False, False), (True, False), (False, True), (True, True)} and min(steps.values()) > 0
    loads = b.gpu_loader_rates(synthetic, 'cpu', [0, 1], n=1, bs=8)
    assert set(loads) == {0, 1} and min(loads.values()) > 0
    assert b.gpu_loader_rates(synthetic, 'cpu', [0, 1], n=1, bs=8, cache=True)[1] > 0            # the image store, read by a worker too
    assert b.gpu_launch_seconds(synthetic, 1, arch='resnet18', size=32, bs=8, cache='off') > 0
    assert b.gpu_launch_seconds(synthetic, 2, arch='resnet18', size=32, bs=8) > 0     # the 2-GPU launch, as 2 CPU processes (gloo)
