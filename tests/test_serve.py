"""`scene-cls serve` under load: 8 clients upload real (or synthetic) images and a few bad files at once for a few
seconds; every request is answered with the model's label or the bad-file message, memory stays flat, no upload is
left on disk, and an upload above --max-file-size is refused (HTTP 413). `python -m bench --only serve` runs the
same for 60 seconds and records requests/s and latencies."""
import shutil
from pathlib import Path
import pytest
from conftest import INTEL_SAMPLE

pytest.importorskip('gradio_client', reason="the app extra is not installed (pip install 'scene_cls[app]')")

@pytest.mark.parametrize('kind', ['scenes.onnx', 'model.pkl'])
def test_serve_under_load(kind, exported, synthetic, tmp_path):
    from harness import serve_load
    from scene_cls.runtime import load_scene_model
    from scene_cls.predict import predict_rows
    out, _ = exported
    src = INTEL_SAMPLE/'valid' if (INTEL_SAMPLE/'valid').is_dir() else synthetic/'seg_pred'
    files = sorted(src.rglob('*.jpg'))[::25][:12]
    good = {Path(r['path']): r['predicted'] for r in predict_rows(load_scene_model(out/kind), files, progress=False)}
    (tmp_path/'notes.jpg').write_text('not an image'); (tmp_path/'empty.jpg').write_bytes(b'')
    (tmp_path/'cut.jpg').write_bytes(files[0].read_bytes()[:300])
    res = serve_load(out/kind, good, [tmp_path/'notes.jpg', tmp_path/'empty.jpg', tmp_path/'cut.jpg'], seconds=8, clients=8, work=tmp_path/'serve')
    summary = {k: v for k, v in res.items() if k != 'log_tail'}
    assert res["requests"] >= 25 and res['bad_files'] >= 3, summary
    assert res['n_errors'] == 0 and res['wrong'] == 0, summary                 # every answer right: the label, or the bad-file message
    assert res['n_left'] == 0, summary                                          # no upload, no empty temporary left
    assert res['oversize'].startswith('HTTP 413'), summary                      # refused before it is read
    assert res['rss_end_mb'] < 1.15*res['rss_start_mb'], summary               # flat: within the allocator's noise of where it started
    assert res['log_lines'] <= 3, res['log_tail']                               # no progress bar per request in the server's log
