"""The light install (README): requirements-runtime.txt and `pip install --no-deps scene_cls` in a fresh virtual
environment, where torch and fastai are not installed and cannot be imported. An exported ONNX model predicts,
is evaluated and is served there with the same results as in the full install, and the commands start at once."""
import json, os, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
from conftest import REPO, run_cli, mixed_folder

from harness import run_env as run_in, best_time   # run a program of another environment alone; the shortest of n wall times

@pytest.fixture(scope='module')
def light(tmp_path_factory):
    "A fresh environment (no system packages) with the light install and gradio (the Space's requirements): its bin folder"
    d = tmp_path_factory.mktemp('light')/'venv'
    subprocess.run([sys.executable, '-m', 'venv', d], check=True)
    for args in (['-r', REPO/'space'/'requirements-onnx.txt'], ['--no-deps', REPO]):
        r = run_in(d/'bin', 'python', '-m', 'pip', 'install', '-q', '--disable-pip-version-check', *args, timeout=1200)
        if r.returncode: pytest.fail(f"pip install {' '.join(map(str, args))} in a fresh environment failed:\n{r.stderr[-3000:]}")
    return d/'bin'

def test_the_training_stack_cannot_be_imported(light, tmp_path):
    for mod in ('torch', 'torchvision', 'fastai', 'timm'):
        r = run_in(light, 'python', '-c', f'import {mod}', cwd=tmp_path)
        assert r.returncode == 1 and f"No module named '{mod}'" in r.stderr, (mod, r.stderr)
    r = run_in(light, 'python', '-c', 'import scene_cls.core as m; print(m.__file__)', cwd=tmp_path)
    assert r.returncode == 0 and str(light.parent) in r.stdout, (r.stdout, r.stderr)   # the installed copy, not the repository's

def test_predict_gives_the_full_installs_rows(exported, synthetic, light, tmp_path):
    out, _ = exported
    folder = tmp_path/'mixed'; mixed_folder(synthetic, folder, 3)
    r_full = run_cli('predict', out/'scenes.onnx', folder, '--out', tmp_path/'full.csv', '--bs', 3, '--no-progress')
    r_light = run_in(light, 'scene-cls', 'predict', out/'scenes.onnx', folder, '--out', tmp_path/'light.csv', '--bs', 3, '--no-progress', cwd=tmp_path)
    assert r_full.returncode == r_light.returncode == 1, (r_full.stderr, r_light.stderr)   # the broken files failed, in both
    a, b = (pd.read_csv(tmp_path/f, keep_default_na=False) for f in ('full.csv', 'light.csv'))
    assert len(b) == len(list(folder.iterdir())) == len(a)
    for c in ('path', 'predicted', 'error'): assert (a[c] == b[c]).all(), c
    ok = a.error == ''
    assert ok.sum() >= 8 and (~ok).sum() >= 5
    np.testing.assert_allclose(b[ok].confidence.astype(float), a[ok].confidence.astype(float), atol=1e-5)
    assert (a[ok].top3.str.replace(r':[0-9.]+', '', regex=True) == b[ok].top3.str.replace(r':[0-9.]+', '', regex=True)).all()

def test_interpret_gives_the_full_installs_report(exported, synthetic, light, tmp_path):
    out, _ = exported
    r_full = run_cli('interpret', out/'scenes.onnx', synthetic, '--out', tmp_path/'full', '--k', 3)
    r_light = run_in(light, 'scene-cls', 'interpret', out/'scenes.onnx', synthetic, '--out', tmp_path/'light', '--k', 3, cwd=tmp_path)
    assert r_full.returncode == r_light.returncode == 0, (r_full.stderr, r_light.stderr)
    a, b = (json.loads((tmp_path/d/'metrics.json').read_text()) for d in ('full', 'light'))
    assert b['n'] == 24 and b['confusion'] == a['confusion'] and b['accuracy'] == a['accuracy']
    np.testing.assert_allclose([t['loss'] for t in b['top_losses']], [t['loss'] for t in a['top_losses']], atol=1e-4)
    assert sorted(f.name for f in (tmp_path/'light').iterdir()) == ['confusion_matrix.png', 'metrics.json', 'predictions.csv', 'report.md', 'top_losses.png']
    assert 'Accuracy' in r_light.stdout and 'Traceback' not in r_light.stderr

def test_the_apps_classify_function_and_app(exported, synthetic, light, tmp_path):
    out, _ = exported
    good = sorted((synthetic/'seg_pred'/'seg_pred').iterdir())[0]
    (tmp_path/'notes.jpg').write_text('not an image')
    code = f"""import json, sys
from scene_cls.runtime import load_scene_model
from scene_cls.app import classify_file, classify_files, scene_app
m = load_scene_model({str(out/'scenes.onnx')!r})
r, bad = classify_file(m, {str(good)!r}), classify_file(m, {str(tmp_path/'notes.jpg')!r})
df = classify_files(m, [{str(good)!r}, {str(tmp_path/'notes.jpg')!r}], {str(tmp_path/'many.csv')!r})
demo = scene_app(m, examples={str(synthetic)!r}, n_examples=2)
print(json.dumps(dict(row=r['row'], top3=r['top3'], overlay=r['overlay'], bad=bad['message'], many=df.predicted.tolist(),
                      app=type(demo).__name__, loaded=sorted({{'torch', 'fastai', 'pytorch_grad_cam'}} & set(sys.modules)))))"""
    r = run_in(light, 'python', '-c', code, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    from scene_cls.runtime import load_scene_model
    from scene_cls.predict import predict_rows
    ref = next(predict_rows(load_scene_model(out/'scenes.onnx'), [good], progress=False))
    assert got['row']['predicted'] == ref['predicted'] and abs(got['row']['confidence'] - ref['confidence']) < 1e-5, (got, ref)
    assert got['overlay'] is None and len(got['top3']) == 3 and got['bad'].startswith('Cannot classify this file. notes.jpg: not an image')
    assert got['many'][0] == ref['predicted'] and got['app'] == 'Blocks' and got['loaded'] == []

def test_a_pkl_model_or_training_says_what_to_install(exported, synthetic, light, tmp_path):
    out, _ = exported
    for args in (('predict', out/'model.pkl', synthetic/'seg_pred', '--out', tmp_path/'p.csv'), ('train', '--synthetic', '--out', tmp_path/'run'),
                 ('env', '--timeout', 0)):
        r = run_in(light, 'scene-cls', *args, cwd=tmp_path)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'training install' in r.stderr and 'pip install "scene_cls @ git+' in r.stderr, (args, r.stderr)

def test_commands_start_at_once(exported, synthetic, light, tmp_path):
    out, _ = exported
    one = sorted((synthetic/'seg_pred'/'seg_pred').iterdir())[0]
    cases = {'scene-cls --help': ('--help',), 'scene-cls predict --help': ('predict', '--help'),
             'scene-cls predict model.onnx ONE_FILE': ('predict', out/'scenes.onnx', one, '--out', tmp_path/'one.csv', '--no-progress')}
    times = {}
    for name, args in cases.items():
        def go():
            r = run_in(light, 'scene-cls', *args, cwd=tmp_path); assert r.returncode == 0, r.stderr
        times[name] = best_time(3, go)
    # the baseline, in the same run: importing the training stack, what every command did before its imports were lazy
    times['import fastai.vision.all (full install)'] = stack = best_time(3, lambda: run_in(Path(sys.executable).parent, 'python', '-c', 'import fastai.vision.all'))
    print(json.dumps(times))
    assert max(t for k, t in times.items() if k.startswith('scene-cls')) < 0.3*stack, times   # measured: 0.05 of it (0.29 s against 6 s)
