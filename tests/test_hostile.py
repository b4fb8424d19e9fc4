"""Hostile input against `scene-cls serve` (a live server on 127.0.0.1) and `scene-cls predict` / `interpret` (folders
nobody checked): the findings of issue 33, one test or more each. Every test is bounded: a few servers, a few small
files (the largest upload 160 KB), a timeout on every request and command."""
import json, os, re, shutil, signal, subprocess, sys, tempfile, threading, time, tomllib
from pathlib import Path
import pandas as pd, pytest
from PIL import Image
from conftest import REPO, run_cli, scene_cls_cmd
from harness import start_server, call_api, _rss_mb

pytest.importorskip('gradio_client', reason="the app extra is not installed (pip install 'scene_cls[app]')")
import httpx
slow = pytest.mark.slow   # trains a model (`exported`), starts servers: the slow tier (tests/conftest.py)

BOUND_MB = 400   # server memory growth in a hostile run: one decode within core.MAX_DECODED (256 MB), and margin

def fd(path) -> dict:
    "A file named in a request, as Gradio takes it (the path on the server)"
    return {'path': str(path), 'meta': {'_type': 'gradio.FileData'}}

def serve(model, work:Path, *args, env=None, timeout=180):
    "`scene-cls serve MODEL` on 127.0.0.1 with its own upload folder `work/gradio`: (process, url)"
    (work/'gradio').mkdir(parents=True, exist_ok=True)
    e = {**os.environ, 'GRADIO_TEMP_DIR': str(work/'gradio'), 'GRADIO_ANALYTICS_ENABLED': 'False', 'MPLBACKEND': 'Agg',
         **(env or {})}
    cmd = scene_cls_cmd() + ['serve', model, '--no-gradcam', *map(str, args)]
    proc, url, _ = start_server(cmd, work/'serve.log', e, timeout=timeout)
    return proc, url

def stop(proc):
    proc.terminate()
    try: proc.wait(30)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait(30)

def upload(url, *files) -> list:
    "Upload `files` as the browser does (one POST to Gradio's upload route); their paths on the server"
    parts = [('files', (Path(f).name, Path(f).read_bytes(), 'image/png')) for f in files]
    r = httpx.post(url + 'gradio_api/upload', files=parts, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()

def app_dirs(pid:int) -> list: return list(Path(tempfile.gettempdir()).glob(f'scene_cls_app_{pid}_*'))

@pytest.fixture(scope='module')
def bombs(tmp_path_factory):
    "The review's bombs: 1-bit 9000x9000 PNGs (10 KB; 81 MB as Pillow holds one), 8 different; a 16-bit one (160 KB)"
    d = tmp_path_factory.mktemp('bombs')
    for i in range(8):   # each its own content, so that none shares another's upload
        im = Image.new('1', (9000, 9000)); im.putpixel((i, i), 1); im.save(d/f'bomb1_{i}.png')
    Image.new('I;16', (9000, 9000)).save(d/'bomb16.png')
    assert (d/'bomb1_0.png').stat().st_size < 12_000 and (d/'bomb16.png').stat().st_size < 170_000
    return d

# 1. Memory from a few kilobytes: the bombs, one upload named 8 times, 8 bombs, 17 entries; both kinds of model

@slow
@pytest.mark.parametrize('kind', ['scenes.onnx', 'model.pkl'])
def test_bombs_and_repeated_entries_keep_the_server_within_its_bound(kind, exported, synthetic, bombs, tmp_path):
    out, _ = exported
    proc, url = serve(out/kind, tmp_path)
    peak, done = [0.0], threading.Event()
    def sample():
        while not done.is_set(): peak[0] = max(peak[0], _rss_mb(proc.pid)); time.sleep(0.05)
    try:
        good = sorted((synthetic/'seg_pred/seg_pred').iterdir())[0]
        assert call_api(url, 'classify', [fd(upload(url, good)[0])])[0] == 'complete'   # warm: the model has run once
        time.sleep(1); base = _rss_mb(proc.pid); threading.Thread(target=sample, daemon=True).start()
        b1, b16, *more = upload(url, bombs/'bomb1_0.png', bombs/'bomb16.png', *sorted(bombs.glob('bomb1_[1-7].png')))
        t0, answers = time.time(), {}
        for name, api, data in (('bomb1', 'classify', [fd(b1)]), ('bomb16', 'classify', [fd(b16)]),
                                ('same x8', 'classify_many', [[fd(b1)]*8]),
                                ('8 bombs', 'classify_many', [[fd(b1)] + [fd(f) for f in more]]),
                                ('17 entries', 'classify_many', [[fd(b1)]*17])):
            t = time.time(); answers[name] = call_api(url, api, data, timeout=120) + (round(time.time() - t, 1),)
        grew = peak[0] - base
    finally:
        done.set(); stop(proc)
    summary = dict(base_mb=round(base), peak_mb=round(peak[0]), seconds=round(time.time() - t0, 1))
    summary.update({k: (e, str(d)[:160], s) for k, (e, d, s) in answers.items()})
    print(kind, summary)
    assert grew < BOUND_MB, summary                                               # before: +2,211 MB (one 16-bit bomb)
    assert all(e == 'complete' for e, _, _ in answers.values()), summary         # every request answered
    assert answers['bomb1'][1][0].get('label'), summary                           # decoded small, classified
    assert 'bomb16.png: too large to decode (9000x9000 I;16' in answers['bomb16'][1][2], summary   # from its header
    rows = lambda k: answers[k][1][0]['data']
    assert len(rows('same x8')) == 8 and all(r[1] for r in rows('same x8')), summary
    assert len(rows('8 bombs')) == 8 and all(r[1] for r in rows('8 bombs')), summary
    assert len(rows('17 entries')) == 1, summary                                  # before: 17 rows, 3,000 accepted
    assert 'Refused: 17 files in one request, at most 16' in rows('17 entries')[0][4], summary

# 2. Deleting through the app; 8. the page shows no upload path, and no answer stays on disk

@slow
def test_a_request_cannot_read_or_delete_what_it_did_not_upload(exported, synthetic, tmp_path):
    out, _ = exported
    (tmp_path/'gradio').mkdir()
    precious = tmp_path/'gradio'/'precious.jpg'   # other data where GRADIO_TEMP_DIR points
    shutil.copy(sorted((synthetic/'seg_pred/seg_pred').iterdir())[0], precious)
    proc, url = serve(out/'scenes.onnx', tmp_path, '--upload-age', 1)
    try:
        config = httpx.get(url + 'config', timeout=30).text
        examples = re.findall(r'"path":"([^"]+\.jpg)"', config)
        assert len(examples) == 6 and str(tmp_path/'gradio') not in config, config[:500]   # examples, no upload folder
        named = {'precious': call_api(url, 'classify', [fd(precious)]),
                 'example': call_api(url, 'classify', [fd(examples[0])]),
                 'many': call_api(url, 'classify_many', [[fd(precious), fd(examples[1])]])}
        mine = upload(url, precious)[0]
        answered = call_api(url, 'classify_many', [[fd(mine)]])
        time.sleep(3)   # --upload-age 1: what may go is gone by now
        dirs = app_dirs(proc.pid)
        left = sorted(p.name for d in dirs for p in d.rglob('*') if p.is_file() and 'examples' not in p.parts)
        examples_kept = all(Path(e).exists() for e in examples)
    finally: stop(proc)
    assert named['precious'][0] == named['example'][0] == 'complete', named
    assert 'it was not uploaded to this page' in named['precious'][1][2], named
    assert 'it was not uploaded to this page' in named['example'][1][2], named
    assert 'Refused' in named['many'][1][0]['data'][0][4], named
    assert precious.exists() and examples_kept, 'a named file was deleted'        # before: both deleted
    assert answered[0] == 'complete' and answered[1][0]['data'][0][1], answered  # an upload is classified...
    assert not Path(mine).exists(), mine                                          # ...and deleted once answered
    assert len(dirs) == 1 and left == [], left                                    # its CSV gone from the app's folder

# 5. Exposure: the upload route's limits, the queue, a login, a warning; 8. a killed server's leftovers

@slow
def test_the_upload_route_and_the_queue_have_limits(exported, synthetic, tmp_path):
    out, _ = exported
    img = sorted((synthetic/'seg_pred/seg_pred').iterdir())[0]
    proc, url = serve(out/'scenes.onnx', tmp_path, '--upload-age', 1, '--max-file-size', '100kb')
    try:
        tiny = [('files', (f'{i}.jpg', b'x', 'image/jpeg')) for i in range(17)]
        many = httpx.post(url + 'gradio_api/upload', files=tiny, timeout=60)
        def parts():   # no Content-Length, counted as it comes: 30 files of 64 KB, each under --max-file-size
            head = 'Content-Disposition: form-data; name="files"; filename="{}.jpg"'
            for i in range(30): yield f'--b\r\n{head.format(i)}\r\n\r\n'.encode() + b'\0'*65536 + b'\r\n'
            yield b'--b--\r\n'
        streamed = httpx.post(url + 'gradio_api/upload', content=parts(), timeout=60,
                              headers={'content-type': 'multipart/form-data; boundary=b'})
        direct = httpx.post(url + 'gradio_api/run/classify', json={'data': [None]}, timeout=30)
        idle = upload(url, img)[0]   # uploaded, never classified
        time.sleep(8)                # 6 x --upload-age
        idle_left = Path(idle).exists()
    finally: stop(proc)
    assert many.status_code == 413 and 'at most 16 files' in many.text, (many.status_code, many.text)   # before: 1,000
    assert streamed.status_code == 413, (streamed.status_code, streamed.text)    # before: all 30 stored
    assert direct.status_code == 404, direct.text                                 # every call through the bounded queue
    assert not idle_left                                                          # before: kept 10 min (Gradio's sweep)

@slow
def test_a_login_and_what_a_killed_server_left(exported, tmp_path):
    out, _ = exported
    proc, url = serve(out/'scenes.onnx', tmp_path/'a')
    killed = app_dirs(proc.pid)
    proc.send_signal(signal.SIGKILL); proc.wait(30)
    assert len(killed) == 1 and killed[0].exists()   # nothing ran at exit
    proc, url = serve(out/'scenes.onnx', tmp_path/'b', env={'SCENE_CLS_AUTH': 'ann:secret word'})
    try:
        anonymous = httpx.get(url + 'config', timeout=30)
        with httpx.Client(timeout=30) as c:
            c.post(url + 'login', data={'username': 'ann', 'password': 'secret word'})
            logged = c.get(url + 'config')
    finally: stop(proc)
    assert not killed[0].exists()                                                 # removed by the next server
    assert (anonymous.status_code, logged.status_code) == (401, 200)

@slow
def test_serve_warns_when_other_machines_can_reach_it(exported, monkeypatch, capsys):
    "No socket is opened: Gradio's launch is a stub here, so the test stays on this machine"
    import gradio, scene_cls.cli as cli
    out, _ = exported
    launched = {}
    monkeypatch.setattr(gradio.Blocks, 'launch', lambda self, **kw: launched.update(kw))
    monkeypatch.setattr(signal, 'signal', lambda *a: None)   # serve's SIGTERM handler: not for pytest's process
    assert cli.main(['serve', str(out/'scenes.onnx'), '--host', '0.0.0.0']) == 0
    err = capsys.readouterr().err
    assert 'warning: the web demo listens on 0.0.0.0, reachable from other machines' in err, err
    assert '--auth USER:PASSWORD' in err, err
    assert launched['server_name'] == '0.0.0.0' and launched['auth'] is None, launched
    assert launched['app_kwargs']['middleware'], launched                        # the upload limit
    assert cli.main(['serve', str(out/'scenes.onnx')]) == 0
    assert 'warning' not in capsys.readouterr().err                               # 127.0.0.1: quiet

# 3. Loading a model runs code: said where a user decides, warned on load, ONNX preferred

@slow
def test_pickles_are_said_to_run_code(exported, synthetic, tmp_path):
    out, _ = exported
    for cmd in ('predict', 'interpret', 'serve', 'export', 'train'):
        r = run_cli(cmd, '-h', timeout=120)
        assert 'pickle, which runs its code when loaded' in ' '.join(r.stdout.split()), (cmd, r.stdout)
    r = run_cli('predict', out/'model.pkl', synthetic/'seg_pred', '--out', tmp_path/'p.csv', '--no-progress')
    said = [l for l in r.stderr.splitlines() if 'pickle' in l]
    assert r.returncode == 0 and len(said) == 1 and said[0].startswith('scene-cls: warning: '), r.stderr
    assert '.onnx' in said[0], said
    space = (REPO/'space/app.py').read_text()
    assert 'model.onnx' in space.split('"""')[1] and 'pickle' in space
    shutil.copy(out/'model.pkl', tmp_path/'model.pkl'); shutil.copy(out/'scenes.onnx', tmp_path/'model.onnx')
    code = ("from scene_cls.app import space_app; d = space_app('.'); "
            "print(any(getattr(b, 'label', '') == 'Grad-CAM (needs model.pkl)' for b in d.blocks.values()))")
    r = subprocess.run([sys.executable, '-W', 'always', '-c', code], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == 'True', r.stderr            # both there: the ONNX file served...
    assert 'pickle' not in r.stderr, r.stderr                                     # ...and no pickle loaded

# 4. A crafted .onnx reads server files through external data: refused before ONNX Runtime sees it, on any runtime

def leaky_onnx(folder:Path, location:str, n:int=16) -> Path:
    "A model whose outputs are `n` bytes of the file `location` (external data), with scene_cls's metadata"
    onnx = pytest.importorskip('onnx')
    from onnx import helper as oh, TensorProto as TP
    t = TP(name='secret', data_type=TP.UINT8, dims=[1, n], data_location=TP.EXTERNAL)
    for k, v in (('location', location), ('offset', '0'), ('length', str(n))): t.external_data.add(key=k, value=v)
    nodes = [oh.make_node('Cast', ['secret'], ['logits'], to=TP.FLOAT), oh.make_node('Identity', ['logits'], ['probs'])]
    g = oh.make_graph(nodes, 'leak', [oh.make_tensor_value_info('pixels', TP.UINT8, ['b', 3, 8, 8])],
                      [oh.make_tensor_value_info(o, TP.FLOAT, [1, n]) for o in ('probs', 'logits')], initializer=[t])
    m = oh.make_model(g, opset_imports=[oh.make_opsetid('', 17)]); m.ir_version = 8
    oh.set_model_props(m, {'scene_cls.classes': json.dumps([f'c{i}' for i in range(n)]),
                           'scene_cls.image_size': '[8, 8]'})
    folder.mkdir(parents=True, exist_ok=True); onnx.save(m, folder/'model.onnx')
    return folder/'model.onnx'

def test_an_onnx_model_reads_no_file_outside_its_folder(tmp_path, monkeypatch):
    ort = pytest.importorskip('onnxruntime')
    from scene_cls.core import SceneError
    from scene_cls.runtime import OnnxSceneModel
    secret = tmp_path/'secret.txt'; secret.write_text('the server\'s own file, 16+ bytes')
    models = {'../secret.txt': leaky_onnx(tmp_path/'up', '../secret.txt'),
              'absolute': leaky_onnx(tmp_path/'abs', str(secret)), 'link': leaky_onnx(tmp_path/'link', 'data.bin')}
    (tmp_path/'link'/'data.bin').symlink_to(secret)
    seen, real = [], ort.InferenceSession
    monkeypatch.setattr(ort, 'InferenceSession', lambda f, *a, **k: seen.append(f) or real(f, *a, **k))
    for what, f in models.items():
        with pytest.raises(SceneError, match="outside the model's folder"): OnnxSceneModel(f)
    assert seen == [], seen                                                       # ONNX Runtime never saw them
    r = run_cli('predict', models['../secret.txt'], secret, '--out', tmp_path/'p.csv', timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "refused: its tensor data would be read from '../secret.txt'" in r.stderr, r.stderr
    (tmp_path/'in').mkdir(); (tmp_path/'in'/'data.bin').write_bytes(bytes(range(16)))
    assert OnnxSceneModel(leaky_onnx(tmp_path/'in', 'data.bin')).vocab[0] == 'c0'   # inside its folder: fine

# 6. Known-vulnerable floors

def _floors(reqs, name:str) -> list:
    "The lower bounds `reqs` (requirement strings) give `name`"
    return [re.search(r'>=\s*([\d.]+)', r).group(1) for r in reqs if re.match(rf'{name}\s*>=', r, re.I)]

def _reqs(f:Path) -> list:
    "The requirements of the file `f`, without comments"
    return [r for r in (l.split('#')[0].strip() for l in f.read_text().splitlines()) if r]

def test_dependency_floors_are_fixed_releases():
    ver = lambda v: tuple(int(x) for x in v.split('.'))
    meta = tomllib.loads((REPO/'pyproject.toml').read_text())['project']
    extra, runtime = meta['optional-dependencies'], _reqs(REPO/'requirements-runtime.txt')
    space = _reqs(REPO/'space/requirements-onnx.txt')
    for reqs in (extra['app'], runtime, space):   # CVE-2023-4863, CVE-2026-25990, CVE-2026-40192 (what serves the web)
        assert _floors(reqs, 'pillow') and all(ver(v) >= (12, 2) for v in _floors(reqs, 'pillow')), reqs
    for reqs in (extra['app'], extra['dev'], space):   # CVE-2026-28414 (6.7), GHSA-j36p-7w88-g82j (6.16)
        assert _floors(reqs, 'gradio') and all(ver(v) >= (6, 16) for v in _floors(reqs, 'gradio')), reqs
    for reqs in (extra['onnx'], runtime, space):       # external data outside the model's folder: refused from 1.24.1
        new = [r for r in reqs if r.startswith('onnxruntime') and ">='3.11'" in r.replace('"', "'").replace(' ', '')]
        assert new and all(ver(v) >= (1, 24, 1) for v in _floors(new, 'onnxruntime')), reqs
    pinned = [l for l in _reqs(REPO/'space/requirements.txt') if l.startswith('scene_cls')]
    assert pinned and re.search(r'/scene_cls@\S+$', pinned[0]), pinned           # a release, not the default branch

# 7. Hostile files and names in folders

def unprivileged() -> list:
    "A prefix that runs a command without root's power to read any file (so that chmod 000 matters); [] if not root"
    if os.geteuid() != 0: return []
    if not shutil.which('setpriv'): pytest.skip('running as root without setpriv: unreadable files cannot be made')
    caps = '-dac_override,-dac_read_search'
    return ['setpriv', f'--inh-caps={caps}', f'--bounding-set={caps}']

def deep_folders(root:Path, name:str='deep.jpg'):
    "Folders 25 deep (5,000 characters, longer than PATH_MAX) with an empty `name` at the bottom"
    fd = os.open(root, os.O_RDONLY)
    for _ in range(25):
        os.mkdir('d'*200, dir_fd=fd); fd, old = os.open('d'*200, os.O_RDONLY, dir_fd=fd), fd; os.close(old)
    os.close(os.open(name, os.O_CREAT | os.O_WRONLY, dir_fd=fd)); os.close(fd)

def hostile_folder(root:Path, image:Path) -> dict:
    "A folder of hostile entries: {the row's path: what its error says (None: predicted)}"
    root.mkdir()
    for n in ('ok.jpg', '=HYPERLINK("http:x").jpg', '@sum.jpg', 'secret.jpg'): shutil.copy(image, root/n)
    (root/'+notes.jpg').write_text('not an image'); (root/'-empty.jpg').touch()
    os.mkfifo(root/'pipe.jpg'); os.symlink('/dev/zero', root/'device.jpg'); os.symlink('.', root/'loop')
    (root/'sub').mkdir(); os.symlink('..', root/'sub'/'back')   # back to the folder given
    os.symlink('self.jpg', root/'self.jpg'); os.symlink('gone.jpg', root/'dangling.jpg')
    (root/'locked').mkdir(); shutil.copy(image, root/'locked'/'inside.jpg'); os.chmod(root/'locked', 0)
    os.chmod(root/'secret.jpg', 0)
    deep_folders(root)
    return {'ok.jpg': None, "'=HYPERLINK(\"http:x\").jpg": None, "'@sum.jpg": None,
            "'+notes.jpg": "'+notes.jpg: not an image", "'-empty.jpg": "'-empty.jpg: empty file",
            'pipe.jpg': 'pipe.jpg: a named pipe (FIFO), not an image file',
            'device.jpg': 'device.jpg: a character device, not an image file',
            'loop': 'a link to a folder already listed (.)', 'sub/back': 'a link to a folder already listed (..)',
            'self.jpg': 'self.jpg: cannot be read (Too many levels of symbolic links)',
            'dangling.jpg': 'dangling.jpg: a link to gone.jpg, which does not exist',
            'locked': 'cannot list this folder (Permission denied)',
            'secret.jpg': 'secret.jpg: cannot be read (Permission denied)',
            'd'*200: 'cannot list this folder (File name too long)'}

@slow
def test_predict_gives_one_true_row_per_hostile_entry(exported, synthetic, tmp_path):
    out, _ = exported
    pre = unprivileged()
    want = hostile_folder(tmp_path/'h', sorted((synthetic/'seg_pred/seg_pred').iterdir())[0])
    try:
        cmd = pre + scene_cls_cmd() + ['predict', out/'scenes.onnx', '.', '--out', tmp_path/'p.csv', '--no-progress']
        r = subprocess.run(cmd, cwd=tmp_path/'h', capture_output=True, text=True, timeout=60)   # before: a pipe hung it
    finally: os.chmod(tmp_path/'h'/'locked', 0o755)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr           # finished; some files failed
    rows = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    got = {p.split('/')[0] if p.startswith('d'*200) else p: e for p, e in zip(rows.path, rows.error)}
    assert sorted(got) == sorted(want), (sorted(got), sorted(want))              # one row per entry, no more
    for name, reason in want.items():
        assert (got[name] == '') if reason is None else reason in got[name], (name, got[name])
    assert not any(str(c).startswith(('=', '+', '-', '@')) for c in rows.to_numpy().ravel()), rows   # no formula runs
    deep = '/'.join(['d'*200]*25) + '/deep.jpg'   # a path longer than PATH_MAX, given as it is
    cmd = scene_cls_cmd() + ['predict', out/'scenes.onnx', deep, '--out', tmp_path/'deep.csv', '--no-progress']
    r = subprocess.run(cmd, cwd=tmp_path/'h', capture_output=True, text=True, timeout=60)
    rows = pd.read_csv(tmp_path/'deep.csv', keep_default_na=False)
    assert r.returncode == 1 and 'Traceback' not in r.stderr, r.stderr           # before: traceback, header-only CSV
    assert len(rows) == 1 and rows.error[0].endswith('deep.jpg: cannot be read (File name too long)'), rows

@slow
def test_interpret_and_image_files_do_not_hang_or_repeat(exported, synthetic, tmp_path):
    from scene_cls.core import image_files
    out, _ = exported
    lab = tmp_path/'lab'; shutil.copytree(synthetic/'seg_test/seg_test', lab)
    os.mkfifo(lab/'forest'/'pipe.jpg')               # to hang the reader
    os.symlink('..', lab/'forest'/'again')           # to list every image again
    n = len(list(synthetic.glob('seg_test/seg_test/*/*.jpg')))
    t = time.time(); files = image_files(lab)
    assert len(files) == n + 1 and len(set(files)) == len(files), len(files)     # before: 41 times each
    assert time.time() - t < 10
    for model in ('model.pkl', 'scenes.onnx'):
        r = run_cli('interpret', out/model, lab, '--out', tmp_path/model, '--no-progress', '--no-gradcam', timeout=120)
        assert r.returncode == 2, (model, r.stderr[-2000:])                     # before: the pipe hung the reader
        assert 'pipe.jpg: a named pipe (FIFO), not an image file' in r.stderr, (model, r.stderr[-2000:])
