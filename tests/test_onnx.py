"The model exported to ONNX, from the command line: the same rows as the PyTorch model on good and broken files, one-line errors."
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest
from harness import same_predictions
from conftest import run_cli, mixed_folder

pytest.importorskip('onnxruntime', reason="the onnx extra is not installed (pip install 'scene_cls[onnx]')")

def test_export_checks_against_pytorch_on_the_runs_images(exported, synthetic):
    out, r = exported
    assert (out/'scenes.onnx').is_file()
    assert f"on 24 images of {synthetic/'seg_test'/'seg_test'}" in r.stdout, r.stdout
    import onnx
    meta = {p.key: p.value for p in onnx.load(out/'scenes.onnx').metadata_props}
    assert json.loads(meta['scene_cls.classes']) == ['buildings', 'forest', 'glacier', 'mountain', 'sea', 'street']
    assert json.loads(meta['scene_cls.image_size']) == [48, 48] and meta['scene_cls.arch'] == 'resnet18'

def test_onnx_predict_gives_the_pytorch_rows_on_broken_input(exported, synthetic, tmp_path):
    out, _ = exported
    folder = tmp_path/'mixed'
    kinds = mixed_folder(synthetic, folder, 3)
    res = {}
    for name, model in (('torch', 'model.pkl'), ('onnx', 'scenes.onnx')):
        r = run_cli('predict', out/model, folder, '--out', tmp_path/f'{name}.csv', '--bs', 3, '--no-progress')
        assert r.returncode == 1, r.stderr                                     # the broken files failed, in both
        res[name] = pd.read_csv(tmp_path/f'{name}.csv', keep_default_na=False)
    a, b = res['torch'], res['onnx']
    assert len(b) == len(list(folder.iterdir())) and (b.path == a.path).all()
    assert (b.error == a.error).all() and same_predictions(a, b)   # other kernels: a near-tie may rank the other way
    ok = a.error == ''
    assert ok.sum() >= 8 and set(b[~ok].path.map(lambda p: Path(p).name)) == {k for k, v in kinds.items() if v} | {'notes.txt'}
    np.testing.assert_allclose(b[ok].confidence.astype(float), a[ok].confidence.astype(float), atol=1e-5)
    assert (b[ok].top3.str.split().str[0].str.split(':').str[0] == b[ok].predicted).all()

def test_onnx_interpret_matches_pytorch(exported, synthetic, tmp_path):
    out, _ = exported
    ms = {}
    for name, model in (('torch', 'model.pkl'), ('onnx', 'scenes.onnx')):
        r = run_cli('interpret', out/model, synthetic, '--out', tmp_path/name, '--k', 3)
        assert r.returncode == 0, r.stderr
        ms[name] = json.loads((tmp_path/name/'metrics.json').read_text())
    moved = np.abs(np.array(ms['onnx']['confusion']) - np.array(ms['torch']['confusion'])).sum()
    assert moved <= 2, (ms['onnx']['confusion'], ms['torch']['confusion'])   # the same counts, or one image moved by a near-tie
    np.testing.assert_allclose([t['loss'] for t in ms['onnx']['top_losses']], [t['loss'] for t in ms['torch']['top_losses']], atol=1e-4)
    assert not (tmp_path/'onnx'/'gradcam.png').exists() and (tmp_path/'onnx'/'top_losses.png').is_file()

@pytest.mark.parametrize('content, msg', [(b'', 'not an ONNX model'), (b'\x08\x01' + b'\xff' * 300, 'not an ONNX model')])
def test_a_corrupt_onnx_file_is_one_line(content, msg, synthetic, tmp_path):
    (tmp_path/'m.onnx').write_bytes(content)
    r = run_cli('predict', tmp_path/'m.onnx', synthetic/'seg_pred', '--out', tmp_path/'p.csv')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, r.stderr

def test_a_truncated_export_is_one_line(exported, synthetic, tmp_path):
    out, _ = exported
    data = (out/'scenes.onnx').read_bytes()
    (tmp_path/'cut.onnx').write_bytes(data[:len(data)//2])
    r = run_cli('predict', tmp_path/'cut.onnx', synthetic/'seg_pred', '--out', tmp_path/'p.csv')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and 'cut.onnx: not an ONNX model' in r.stderr, r.stderr

def test_without_onnxruntime_the_error_names_the_install(exported, synthetic, tmp_path):
    import subprocess, sys
    out, _ = exported
    code = ("import sys; sys.modules['onnxruntime'] = None; from scene_cls.cli import main; "
            f"sys.exit(main(['predict', {str(out/'scenes.onnx')!r}, {str(synthetic/'seg_pred')!r}, '--out', {str(tmp_path/'p.csv')!r}]))")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert 'pip install "scene_cls[onnx] @ git+' in r.stderr, r.stderr
