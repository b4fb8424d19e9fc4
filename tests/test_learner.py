"Backbones, weights offline, export/load in a fresh process, resume after a killed run, exact repeats on the CPU."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest, torch, torchvision, timm
from conftest import run_cli, scene_cls_cmd, TINY
from scene_cls.data import SceneError
from scene_cls.weights import load_pretrained, WeightsError, PLACES365_URL
from scene_cls.learner import scene_model
import scene_cls.weights as weights_mod

BACKBONES = ['resnet50', 'resnet101', 'tf_efficientnet_lite0', 'efficientnet_b0', 'mobilenet_v3_small',
             'timm/resnet18', 'convnext_atto', 'regnety_002']

@pytest.mark.parametrize('arch', BACKBONES)
def test_backbone_forward_backward_on_cpu(arch):
    model, stats, splitter = scene_model(arch, 6, weights=None)
    groups = splitter(model)
    assert len(groups) >= 2
    assert sum(len(list(g)) for g in groups) == len(list(model.parameters()))   # every parameter in one group
    assert len(stats) == 2 and len(stats[0]) == 3
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 6)
    out.sum().backward()
    assert all(p.grad is not None for p in model[1].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model[0].parameters())

def offline(monkeypatch):
    "No network, simulated whatever the machine has: every urllib download fails at once, as a closed network fails it"
    import urllib.error, urllib.request
    def refuse(*a, **k): raise urllib.error.URLError('network unreachable (simulated by the test)')
    monkeypatch.setattr(urllib.request, 'urlopen', refuse)

def test_offline_imagenet_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path)); offline(monkeypatch)
    with pytest.raises(WeightsError) as e: load_pretrained(torchvision.models.resnet50(weights=None), 'resnet50', 'imagenet')
    msg = str(e.value)
    assert 'resnet50-11ad3fa6.pth' in msg and str(tmp_path) in msg and 'copy it to' in msg

def test_imagenet_weights_from_the_torch_cache(tmp_path, monkeypatch):
    "A file already in the cache (as on Kaggle/Colab after a first download) is used without any network"
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    src = torchvision.models.resnet18(weights=None)
    (tmp_path/'hub/checkpoints').mkdir(parents=True)
    torch.save(src.state_dict(), tmp_path/'hub/checkpoints'/torchvision.models.ResNet18_Weights.DEFAULT.url.split('/')[-1])
    m = load_pretrained(torchvision.models.resnet18(weights=None), 'resnet18', 'imagenet')
    assert torch.equal(m.layer3[0].conv1.weight, src.layer3[0].conv1.weight)

def test_places365_download_path_offline_and_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    offline(monkeypatch)
    with pytest.raises(WeightsError, match='resnet50_places365.pth.tar'):
        load_pretrained(torchvision.models.resnet50(weights=None), 'resnet50', 'places365')
    src = torchvision.models.resnet50(weights=None)
    sd = {'module.' + k: v for k, v in src.state_dict().items() if not k.startswith('fc.')}
    sd.update({'module.fc.weight': torch.randn(365, 2048), 'module.fc.bias': torch.randn(365)})
    (tmp_path/'hub/checkpoints').mkdir(parents=True, exist_ok=True)   # the failed download made it already
    torch.save({'epoch': 90, 'arch': 'resnet50', 'state_dict': sd}, tmp_path/'hub/checkpoints'/PLACES365_URL.split('/')[-1])
    m = load_pretrained(torchvision.models.resnet50(weights=None), 'resnet50', 'places365')
    assert torch.equal(m.layer1[0].conv1.weight, src.layer1[0].conv1.weight)

def test_old_pickles_are_read_with_latin1(tmp_path, monkeypatch):
    "Python 2 pickles (the original Places365 release) fail with UnicodeDecodeError; the loader retries with latin1"
    calls, real = [], torch.load
    def fake_load(f, **kw):
        calls.append(kw)
        if 'encoding' not in kw: raise UnicodeDecodeError('ascii', b'\xff', 0, 1, 'ordinal not in range(128)')
        return real(f, **kw)
    src = torchvision.models.resnet18(weights=None)
    torch.save({'state_dict': src.state_dict()}, tmp_path/'old.pth.tar')
    monkeypatch.setattr(weights_mod.torch, 'load', fake_load)
    m = load_pretrained(torchvision.models.resnet18(weights=None), 'resnet18', f'places365:{tmp_path}/old.pth.tar')
    assert [c.get('encoding') for c in calls] == [None, 'latin1'] and all(c['weights_only'] for c in calls)
    assert torch.equal(m.conv1.weight, src.conv1.weight)

def test_local_weights_for_a_timm_arch(tmp_path):
    src = timm.create_model('tf_efficientnet_lite0')
    torch.save(src.state_dict(), tmp_path/'lite0.pth')
    model, stats, _ = scene_model('tf_efficientnet_lite0', 6, weights=tmp_path/'lite0.pth')
    assert torch.equal(model[0].model.conv_stem.weight, src.conv_stem.weight)

def test_export_then_load_in_a_fresh_process(synthetic, tmp_path):
    from scene_cls.learner import scene_learner, export_scene_learner
    from scene_cls.augment import scene_aug_dls
    from scene_cls.data import pred_files
    from fastai.vision.all import set_seed
    set_seed(0)
    learn = scene_learner(scene_aug_dls(synthetic, size=48, bs=8), 'timm/resnet18', weights=None)
    learn.fit(1, 1e-3)
    export_scene_learner(learn, tmp_path/'m.pkl')
    files = [str(f) for f in pred_files(synthetic)]
    before = learn.get_preds(dl=learn.dls.test_dl(files))[0]
    torch.save(before, tmp_path/'before.pt')
    code = ("import sys, torch; from fastai.learner import load_learner; "
            "l = load_learner(sys.argv[1]); files = sys.argv[3:]; "
            "p = l.get_preds(dl=l.dls.test_dl(files))[0]; b = torch.load(sys.argv[2]); "
            "print('SAME' if torch.equal(p, b) else f'DIFF {(p-b).abs().max()}')")
    r = subprocess.run([sys.executable, '-c', code, str(tmp_path/'m.pkl'), str(tmp_path/'before.pt'), *files],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == 'SAME'

def _train_args(syn, out, epochs=4):
    return ['train', '--data', syn, *TINY, '--epochs', epochs, '--freeze-epochs', 0, '--lr', 2e-3, '--out', out, '--k', 2, '--seed', 7]

@pytest.fixture(scope='module')
def slow_syn(tmp_path_factory):
    "Enough images that an epoch takes a moment, so that a run can be killed mid-way"
    from scene_cls.synthetic import make_synthetic_scenes
    return make_synthetic_scenes(tmp_path_factory.mktemp('slow'), n_train=24, n_valid=4, n_pred=0, size=64)

def test_resume_after_a_killed_run(slow_syn, tmp_path):
    out = tmp_path/'cut'
    env = {**os.environ, 'MPLBACKEND': 'Agg'}
    p = subprocess.Popen(scene_cls_cmd() + [str(a) for a in _train_args(slow_syn, out)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    st = out/'state.json'
    deadline = time.time() + 300
    while time.time() < deadline and p.poll() is None:
        if st.exists() and json.loads(st.read_text())['epochs_done'] >= 1: break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    done = json.loads(st.read_text())['epochs_done']
    assert 1 <= done < 4, f"the run was to be killed mid-way, but had done {done} of 4 epochs"
    assert not (out/'model.pkl').exists()
    r = run_cli(*_train_args(slow_syn, out), '--resume')
    assert r.returncode == 0, r.stderr
    whole = tmp_path/'whole'
    r = run_cli(*_train_args(slow_syn, whole))
    assert r.returncode == 0, r.stderr
    cut, ref = pd.read_csv(out/'log.csv'), pd.read_csv(whole/'log.csv')
    assert cut.epoch.tolist() == [0, 1, 2, 3]                 # every epoch once, none twice
    assert cut.lr.round(12).tolist() == ref.lr.round(12).tolist()   # the one-cycle schedule picked up where it was
    assert (out/'model.pkl').exists() and json.loads((out/'state.json').read_text())['epochs_done'] == 4

def test_a_cpu_run_repeats_exactly(synthetic, tmp_path):
    logs = []
    for name in ('a', 'b'):
        r = run_cli(*_train_args(synthetic, tmp_path/name, epochs=2))
        assert r.returncode == 0, r.stderr
        logs.append(pd.read_csv(tmp_path/name/'log.csv')[['train_loss', 'valid_loss', 'accuracy']])
    pd.testing.assert_frame_equal(*logs)

TWO_DOWNLOADS = '''
import sys, urllib.request
site, url = sys.argv[1], sys.argv[2]
_urlopen = urllib.request.urlopen
urllib.request.urlopen = lambda u, *a, **k: _urlopen(site + u.rsplit('/', 1)[-1], *a, **k)   # the site, on loopback
from scene_cls.weights import cached_download
print(cached_download(url))
'''

def test_two_processes_downloading_the_same_weights_both_succeed(tmp_path):
    "Two processes (not a launch: no one waits) download one file at once into an empty cache: each its own temporary, one whole file"
    from harness import SlowFiles
    url = torchvision.models.ResNet18_Weights.DEFAULT.url
    site = tmp_path/'site'; site.mkdir(); sd = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(sd, site/url.rsplit('/', 1)[-1])
    env = {**os.environ, 'TORCH_HOME': str(tmp_path/'torch')}
    with SlowFiles(site, chunk=4*2**20, pause=0.5) as srv:   # 45 MB in ~6 s: the two downloads overlap
        ps = [subprocess.Popen([sys.executable, '-c', TWO_DOWNLOADS, srv.url, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in ps]
    assert [p.returncode for p in ps] == [0, 0], [e[-2000:] for _, e in outs]
    assert len(srv.gets) == 2                                                   # both did download, at once
    cache = tmp_path/'torch'/'hub'/'checkpoints'
    assert [f.name for f in cache.iterdir()] == [url.rsplit('/', 1)[-1]]        # one whole file, no temporary left
    assert all(Path(o.strip()) == cache/url.rsplit('/', 1)[-1] for o, _ in outs)
    back = torch.load(cache/url.rsplit('/', 1)[-1], weights_only=True)
    assert all(torch.equal(back[k], v) for k, v in sd.items())

def test_loading_names_what_failed_and_the_cpu_path_never_touches_cuda(tmp_path, synthetic, monkeypatch):
    "A file that is not an export says so; a failing CUDA is named as such, not as a foreign file; cpu=True loads and predicts with CUDA rigged to fail"
    from scene_cls.data import scene_dls, pred_files
    from scene_cls.learner import scene_learner, export_scene_learner, load_scene_learner, LearnerModel
    pkl = export_scene_learner(scene_learner(scene_dls(synthetic, size=32, bs=8, device='cpu', cache=False), 'test_resnet', None), tmp_path/'m.pkl')
    (tmp_path/'text.pkl').write_text('not a model')
    with pytest.raises(SceneError, match='not a model exported by scene_cls'): load_scene_learner(tmp_path/'text.pkl', cpu=True)
    def cuda_fails(*a, **k): raise RuntimeError('CUDA error: no kernel image is available for execution on the device')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)   # a GPU machine whose CUDA fails at first use
    monkeypatch.setattr(torch.cuda, '_lazy_init', cuda_fails); monkeypatch.setattr(torch.cuda, 'init', cuda_fails)
    learn = load_scene_learner(pkl, cpu=True)
    for tta in (False, True):   # fastai asks for its default device before each prediction and for each batch
        rows = list(LearnerModel(learn).file_probs(sorted(pred_files(synthetic))[:3], tta=tta))
        assert len(rows) == 3 and all(p is not None for _, _, p in rows) and learn.dls.device.type == 'cpu'
    with pytest.raises(SceneError) as e: load_scene_learner(pkl)     # cpu=None: the GPU, which fails
    assert 'RuntimeError: CUDA error: no kernel image' in str(e.value) and 'not a model exported' not in str(e.value), str(e.value)
    assert not torch.cuda.is_initialized()
