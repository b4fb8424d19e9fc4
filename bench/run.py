"""Every benchmark of scene_cls, each beside the plain alternative, in one run on the machine it is on.

    python -m bench                 # everything (about 25 minutes on 2 CPU cores)
    python -m bench --quick         # a small version of every row, under 2 minutes: checks the machinery, not results
    python -m bench --only train,infer --out /tmp/b

Writes `results.json` (rows, the command, the date, the hardware, versions) and `results.md` (the table that the
README includes) to `--out` (default `bench/`). Every row says what it compares and gives ours / plain as a ratio.
Rows that cannot be measured here (the GPU rows on a CPU, the real-image rows without the sample) say why instead
of giving a number. Real images come from `../shared/data/intel-sample` and `intel-extra` beside the repository.
"""
from __future__ import annotations
import warnings
warnings.filterwarnings('ignore')
from pathlib import Path
import numpy as np, torch, torch.nn as nn
from PIL import Image
import torchvision.transforms.v2 as T, torchvision.transforms.v2.functional as TF
import fastai
from fastai.vision.all import *
from scene_cls.core import *
from scene_cls.runtime import *
from scene_cls.data import *
from scene_cls.synthetic import *
from scene_cls.augment import *
from scene_cls.learner import *
from scene_cls.interpret import *
from scene_cls.predict import *
from scene_cls.deploy import *
from copy import deepcopy   # after fastai's star imports, which bring names of their own (copy, datetime)
import argparse, datetime, json, os, platform, resource, shutil, subprocess, sys, time

from bench.common import *   # where the data and the scratch folder are, a row of the table, real or synthetic files

def pil_batch(files, size:int) -> torch.Tensor:
    "A plain decode: PIL open, RGB, bilinear resize, uint8 tensor batch"
    return torch.stack([TF.pil_to_tensor(Image.open(f).convert('RGB').resize((size, size), Image.BILINEAR)) for f in files])

# ---------------------------------------------------------------- training throughput
class BatchClock(Callback):
    "Time `n` training batches after `warmup` of them, then cancel the fit"
    order = 100
    def __init__(self, warmup:int, n:int): store_attr(); self.secs = None
    def before_fit(self): self.k = 0
    def after_batch(self):
        if not self.training: return
        self.k += 1
        if self.k == self.warmup: self.t0 = time.perf_counter()
        if self.k == self.warmup + self.n: self.secs = time.perf_counter() - self.t0; raise CancelFitException

def plain_train(model:nn.Module, items:list, labels:list, size:int, bs:int, stats, frozen:bool, aug:bool, warmup:int, n:int) -> float:
    "images/s of a plain PyTorch training loop: PIL decode and resize, torchvision augmentations per image, AdamW"
    model = deepcopy(model)
    body, head = model[0], model[1]
    for p in body.parameters(): p.requires_grad_(not frozen)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train(); body.train(not frozen)
    loss_f = nn.CrossEntropyLoss(label_smoothing=0.1)
    mean, std = [torch.tensor(s).view(1, 3, 1, 1) for s in stats]
    tfm = T.Compose([T.RandomHorizontalFlip(), T.RandomApply([T.RandomRotation(10)], p=0.5), T.ColorJitter(0.2, 0.2)]) if aug else None
    g = torch.Generator().manual_seed(0); order = torch.randperm(len(items), generator=g).tolist()
    y_all = torch.tensor(labels)
    for k in range(warmup + n):
        if k == warmup: t0 = time.perf_counter()
        idx = [order[(k*bs + j) % len(order)] for j in range(bs)]
        ims = [TF.pil_to_tensor(Image.open(items[i]).convert('RGB').resize((size, size), Image.BILINEAR)) for i in idx]
        if tfm is not None: ims = [tfm(im) for im in ims]
        x = ((torch.stack(ims).float()/255 - mean)/std).contiguous(memory_format=torch.channels_last)
        loss = loss_f(model(x), y_all[idx])
        loss.backward(); opt.step(); opt.zero_grad()
    return rate(n*bs, time.perf_counter() - t0)

def train_case(arch:str, size:int, aug:bool, frozen:bool, quick:bool) -> dict:
    "ours and plain images/s for one training case, interleaved, best of each"
    data = SAMPLE if (SAMPLE/'train').is_dir() else synthetic(n_train=40, n_valid=4)
    bs, warmup, n, reps = (16, 1, 2, 1) if quick else (32, 2, 4, 2)
    set_seed(0)
    dls_at = lambda s: (scene_aug_dls if aug else scene_dls)(data, size=s, bs=bs, check='off')
    learn = scene_learner(dls_at(size), arch, weights=None, path=TMP/'train_run')
    items, labels = list(learn.dls.train.items), [learn.dls.vocab.o2i[parent_label(f)] for f in learn.dls.train.items]
    res = {}
    for _ in range(reps):      # interleaved, best of each: a slow moment of a shared machine hits both sides
        clock = BatchClock(warmup, n)
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(clock):
            fit_scene(learn, dls_at, TMP/'train_run', epochs=0 if frozen else 1, freeze_epochs=1 if frozen else 0, sizes=(size,), lr=1e-3)
        res.setdefault('ours', []).append(rate(n*bs, clock.secs))
        res.setdefault('plain', []).append(plain_train(learn.model, items, labels, size, bs, learn.stats, frozen, aug, warmup, n))
    return dict(ours=max(res['ours']), plain=max(res['plain']), bs=bs,
                note=f"{'real intel-sample' if data == SAMPLE else 'synthetic scenes'}; best of {reps}, {n} batches after {warmup} warm-up; a fresh process")

def bench_train(quick:bool) -> list:
    cases = [(a, s, aug, frozen) for a in ('tf_efficientnet_lite0', 'resnet50') for s in (150, 224) for aug in (True, False) for frozen in (True, False)]
    if quick: cases = [('tf_efficientnet_lite0', 150, True, True), ('tf_efficientnet_lite0', 150, False, False)]
    rows = []
    for arch, size, aug, frozen in cases:
        # each case in a fresh process: in one long process the later cases measured up to 15% lower for us than the
        # same case alone (ResNet50 224px unfrozen with augmentation: 0.83 as the 14th case, 1.07 in a process of its own)
        args = [arch, str(size), str(int(aug)), str(int(frozen)), str(int(quick))]
        out = subprocess.run([sys.executable, '-m', 'bench.run', '--train-child', *args], capture_output=True, text=True, cwd=REPO,
                             env={**os.environ, 'SCENE_CLS_BENCH_TMP': str(TMP)})
        if out.returncode: raise RuntimeError(out.stderr[-3000:])
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row('train', f"{arch} {size}px, {'frozen body' if frozen else 'unfrozen'}, augmentation {'on' if aug else 'off'}, bs {r['bs']}",
                        'fit_scene / plain PyTorch loop (same model, images, batch; torchvision augmentations per image)',
                        r['ours'], r['plain'], note=r['note']))
    return rows

# ---------------------------------------------------------------- inference
def plain_infer(model:nn.Module, files:list, size:int, bs:int, stats) -> float:
    "images/s of a plain loop: PIL decode, RGB, bilinear resize, normalise, forward in inference mode, softmax"
    mean, std = [torch.tensor(s).view(1, 3, 1, 1) for s in stats]
    model.eval(); t0 = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(files), bs): model((pil_batch(files[i:i+bs], size).float()/255 - mean)/std).softmax(1)
    return rate(len(files), time.perf_counter() - t0)

def bench_infer(quick:bool) -> list:
    n = 64 if quick else 1024
    files = real_files(EXTRA, n)
    src = 'real intel-extra'
    if not files:
        files, src = list(pred_files(synthetic(n_train=2, n_valid=1, n_pred=n))), 'synthetic scenes'
    labelled = files if src.startswith('real') else None
    rows, bs = [], 64
    for arch, size in (('tf_efficientnet_lite0', 224), ('resnet50', 150)):
        syn = synthetic(n_train=2, n_valid=1)
        learn = scene_learner(scene_dls(syn, size=size, bs=bs, check='off'), arch, weights=None)
        f = export_scene_learner(learn, TMP/f'{arch}_{size}.pkl')
        learn = load_scene_learner(f, cpu=True)          # as `scene-cls predict` and `interpret` load it
        plain_infer(learn.model, files[:bs], size, bs, learn.stats)    # warm-up, both paths
        predict_csv(learn, files[:bs], TMP/'warm.csv', bs=bs, progress=False)
        res = {}
        for _ in range(1 if quick else 2):   # interleaved, best of each
            res.setdefault('plain', []).append(plain_infer(learn.model, files, size, bs, learn.stats))
            t = time.perf_counter(); r = predict_csv(learn, files, TMP/'preds.csv', bs=bs, progress=False)
            res.setdefault('predict', []).append(rate(len(files), time.perf_counter() - t))
            assert r['files'] == len(files) and r['failed'] == 0, r
            if labelled:
                dl = learn.dls.test_dl(labelled, with_labels=True, bs=bs)   # what `labelled_dl` makes, over these files
                with learn.no_bar():
                    t = time.perf_counter(); scene_preds(learn, dl); res.setdefault('interpret', []).append(rate(len(files), time.perf_counter() - t))
        plain = max(res['plain'])
        rows.append(row('infer', f'scene-cls predict, {arch} {size}px, {len(files)} files, bs {bs}', 'predict_csv / plain loop (same model)',
                        max(res['predict']), plain, note=src))
        if 'interpret' in res:
            rows.append(row('infer', f'scene-cls interpret evaluation, {arch} {size}px, {len(files)} files', 'scene_preds on labelled_dl / plain loop',
                            max(res['interpret']), plain, note=src))
        else: rows.append(not_measured('infer', f'scene-cls interpret evaluation, {arch} {size}px', 'scene_preds / plain loop', f'no labelled real images at {EXTRA}'))
    return rows

# ---------------------------------------------------------------- ONNX Runtime
def _bench_model(arch:str, size:int, quick:bool):
    "An exported learner to predict with: lite0 with its ImageNet body and a head fitted for an epoch on the real sample (when there), else random weights"
    trained = arch == 'tf_efficientnet_lite0' and not quick and (SAMPLE/'train').is_dir()
    path = SAMPLE if trained else synthetic(n_train=2, n_valid=1)
    set_seed(0)
    learn = scene_learner(scene_dls(path, size=size, bs=32, check='off'), arch, weights='imagenet' if trained else None)
    if trained:
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, 1e-2)
    return load_scene_learner(export_scene_learner(learn, TMP/f'onnx_{arch}_{size}.pkl'), cpu=True), trained

def bench_onnx(quick:bool) -> list:
    n, bs = (64 if quick else 1024), 64
    files = real_files(EXTRA, n); src = 'real intel-extra'
    if not files: files, src = list(pred_files(synthetic(n_train=2, n_valid=1, n_pred=n))), 'synthetic scenes'
    rows = []
    for arch, size in (('tf_efficientnet_lite0', 224), ('resnet50', 150)):
        learn, trained = _bench_model(arch, size, quick)
        f = TMP/f'onnx_{arch}_{size}.onnx'
        t = time.perf_counter(); export_onnx(learn, f, check=files[:32]); export_s = time.perf_counter() - t
        m = OnnxSceneModel(f)
        px = np.stack([read_pixels(x, m.size) for x in files])      # pre-decoded: the runtime's limit
        def raw():
            t = time.perf_counter()
            for i in range(0, len(px), bs): m(px[i:i+bs])
            return rate(len(px), time.perf_counter() - t)
        def via(model, out):
            t = time.perf_counter(); r = predict_csv(model, files, out, bs=bs, progress=False)
            assert r['files'] == len(files) and r['failed'] == 0, r
            return rate(len(files), time.perf_counter() - t)
        raw(); via(m, TMP/'warm.csv'); via(learn, TMP/'warm.csv')   # warm-up
        res = {}
        for _ in range(1 if quick else 2):   # interleaved, best of each
            res.setdefault('raw', []).append(raw())
            res.setdefault('onnx', []).append(via(m, TMP/'onnx.csv'))
            res.setdefault('torch', []).append(via(learn, TMP/'torch.csv'))
        a, b = pd.read_csv(TMP/'torch.csv'), pd.read_csv(TMP/'onnx.csv')
        same, dconf = int((a.predicted == b.predicted).sum()), float((a.confidence - b.confidence).abs().max())
        weights = 'ImageNet body, head fitted 1 epoch on intel-sample' if trained else 'random weights'
        what = f'{arch} {size}px, {len(files)} files, bs {bs}'
        rows.append(row('onnx', f'scene-cls predict with the .onnx model, {what}', 'ONNX predict / raw onnxruntime on pre-decoded tensors',
                        max(res['onnx']), max(res['raw']), note=f'{src}; best of {len(res["raw"])}'))
        rows.append(row('onnx', f'scene-cls predict, .onnx against model.pkl, {what}', 'ONNX predict / PyTorch predict (model.pkl)',
                        max(res['onnx']), max(res['torch']),
                        note=f'{src}; {weights}; same class for {same}/{len(files)} files, confidences within {dconf:.1e}; export and check {export_s:.0f}s'))
    return rows

# ---------------------------------------------------------------- the web demo
def bench_app(quick:bool) -> list:
    what = 'one image end to end through the web demo (upload to answer), tf_efficientnet_lite0 224px'
    try:
        from gradio_client import Client, handle_file
        from scene_cls.app import scene_app, classify_file
    except ImportError as e: return [not_measured('app', what, 'app / classify_file in process', f'the app extra is not installed ({e})')]
    import socket, statistics
    n = 3 if quick else 20
    files = real_files(EXTRA, n); src = 'real intel-extra'
    if not files: files, src = list(pred_files(synthetic(n_train=2, n_valid=1, n_pred=n))), 'synthetic scenes'
    learn, _ = _bench_model('tf_efficientnet_lite0', 224, quick)
    rows = []
    for cam in (True, False):
        with socket.socket() as so: so.bind(('127.0.0.1', 0)); port = so.getsockname()[1]
        demo = scene_app(learn, gradcam=cam, n_examples=1)
        demo.launch(server_name='127.0.0.1', server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            c = Client(f'http://127.0.0.1:{port}/', verbose=False)
            c.predict(handle_file(str(files[0])), api_name='/classify'); classify_file(learn, files[0], cam)   # warm-up
            app_s, direct_s = [], []
            for f in files:
                t = time.perf_counter(); c.predict(handle_file(str(f)), api_name='/classify'); app_s.append(time.perf_counter() - t)
                t = time.perf_counter(); classify_file(learn, f, cam); direct_s.append(time.perf_counter() - t)
        finally: demo.close()
        rows.append(row('app', f"{what}, Grad-CAM {'on' if cam else 'off'}", 'classify_file in process / through the app (HTTP upload, queue, answer)',
                        round(statistics.median(app_s), 3), round(statistics.median(direct_s), 3), unit='s', higher_better=False,
                        note=f'{src}; median of {len(files)} images, one at a time'))
    return rows

# ---------------------------------------------------------------- augmentations and the DataLoader
def bench_augment(quick:bool) -> list:
    files = real_files(SAMPLE/'train', 64)
    src = 'real intel-sample' if files else 'synthetic scenes'
    if not files: files = sorted(synthetic(n_train=11, n_valid=0).rglob('*.jpg'))[:64]
    x = TensorImage(pil_batch(files, 150).float()/255)
    def speed(tfms, iters):
        pipe = Pipeline(tfms, split_idx=0)
        for _ in range(2): pipe(x.clone())
        ts = []
        for _ in range(iters): t = time.perf_counter(); pipe(x.clone()); ts.append(time.perf_counter() - t)
        return rate(len(x), sorted(ts)[len(ts)//2])
    set_seed(0)
    it = 5 if quick else 30
    res = {}
    for _ in range(1 if quick else 3):   # interleaved, best of each: the two sides share the machine's slow moments
        res.setdefault('ours', []).append(speed(scene_augs(), it)); res.setdefault('theirs', []).append(speed(setup_aug_tfms(aug_transforms()), it))
    return [row('augment', 'augmentations, batch of 64 at 150px', 'scene_augs / fastai aug_transforms', max(res['ours']), max(res['theirs']),
                note=f"{src}; median of {it} batches, best of {len(res['ours'])} interleaved runs")]

def loader_rate(dl, n:int, bs:int) -> float:
    "images/s of `n` batches of `dl` after its first (workers started)"
    it = iter(dl); next(it)
    t = time.perf_counter()
    for _ in range(n): next(it)
    return rate(n*bs, time.perf_counter() - t)

def bench_dataloader(quick:bool) -> list:
    "The training DataLoader alone (decode, resize, collate, batch augmentation) at 0, 1, 2 worker processes, decoding every epoch"
    n, rows, base = (3 if quick else 10), [], None
    data = SAMPLE if (SAMPLE/'train').is_dir() else synthetic(n_train=-(-(n + 1)*64//6), n_valid=4)   # n+1 full batches
    src = 'real intel-sample' if data == SAMPLE else 'synthetic scenes'
    for w in (0, 1, 2):
        r = loader_rate(scene_aug_dls(data, size=150, bs=64, check='off', num_workers=w, device='cpu', cache=False).train, n, 64)
        base = base or r
        rows.append(row('dataloader', f'training DataLoader alone, 150px, bs 64, num_workers={w}', f'num_workers={w} / num_workers=0',
                        r, base, note=f'{src}; {n} batches after the first; JPEGs decoded every epoch (no image store)'))
    return rows

# ---------------------------------------------------------------- the image store
def store_child(kind:str, cache:bool, quick:bool) -> dict:
    "In a fresh process: one epoch of the training DataLoader (kind 'epoch': peak memory), or the main job (kind 'job')"
    data = SAMPLE if (SAMPLE/'train').is_dir() and not quick else synthetic(n_train=40, n_valid=10)
    if kind == 'epoch':
        dl = scene_aug_dls(data, size=224, bs=32, check='off', device='cpu', cache=cache, progress=False).train
        base, t = rss_mb(), time.time()
        n = sum(len(b[0]) for b in dl)
        st = {l.split(':')[0]: int(l.split()[1])/1024 for l in open('/proc/self/status') if l.startswith(('RssAnon', 'RssFile'))}
        return dict(images=n, seconds=round(time.time() - t, 1), peak_mb=round(rss_mb()), before_mb=round(base),
                    anon_mb=round(st.get('RssAnon', 0)), file_mb=round(st.get('RssFile', 0)))
    # the README's main job: Lite0, 224px, 5 frozen epochs, lr 1e-2, bs 32, seed 42 (quick: 1 epoch of a random-weight model)
    arch, weights, ep = ('resnet18', None, 1) if quick else ('tf_efficientnet_lite0', 'imagenet', 5)
    set_seed(42, reproducible=True)
    dls_at = lambda s: scene_aug_dls(data, size=s, bs=32, seed=42, check='off', cache=cache, progress=False)
    learn = scene_learner(dls_at(224), arch, weights, path=TMP/f'store_job_{int(cache)}')
    t = time.time()
    with learn.no_bar(), learn.no_logging():
        fit_scene(learn, dls_at, TMP/f'store_job_{int(cache)}', epochs=0, freeze_epochs=ep, sizes=(224,), lr=1e-2)
    secs = time.time() - t
    return dict(seconds=round(secs, 1), images_s=rate(len(learn.dls.train_ds)*ep, secs), accuracy=round(float(learn.validate()[1]), 4),
                n_train=len(learn.dls.train_ds), arch=arch, epochs=ep)

def _child(*args) -> dict:
    out = subprocess.run([sys.executable, '-m', 'bench.run', *args], capture_output=True, text=True, cwd=REPO, env={**os.environ, 'SCENE_CLS_BENCH_TMP': str(TMP)})
    if out.returncode: raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])

def bench_store(quick:bool) -> list:
    "The decoded image store against decoding every epoch: the DataLoader alone, building it, memory, and the README's main job"
    n, rows = (3 if quick else 10), []
    data = SAMPLE if (SAMPLE/'train').is_dir() else synthetic(n_train=-(-(n + 1)*64//6), n_valid=4)
    src = 'real intel-sample' if data == SAMPLE else 'synthetic scenes'
    for aug in (False, True):
        f = scene_aug_dls if aug else scene_dls
        r = {c: loader_rate(f(data, size=150, bs=64, check='off', num_workers=0, device='cpu', cache=c, progress=False).train, n, 64) for c in (False, True)}
        r2 = {c: loader_rate(f(data, size=150, bs=64, check='off', num_workers=0, device='cpu', cache=c, progress=False).train, n, 64) for c in (False, True)}
        r = {c: max(r[c], r2[c]) for c in r}    # interleaved, best of two
        rows.append(row('store', f"training DataLoader alone, 150px, bs 64, num_workers=0, {'with' if aug else 'without'} the augmentations (on the CPU)",
                        'image store / JPEG decoded every epoch', r[True], r[False],
                        note=f"{src}; {n} batches after the first, best of 2{'; on a GPU the augmentations run there' if aug else ': what feeds a GPU'}"))
    # building: seconds against one epoch of decoding (what the store saves every later epoch), and size
    big = 600 if quick else 14034
    sets = [(data, 150, src), (data, 224, src), (synthetic(n_train=big//6, n_valid=0, size=150), 150, f'{big:,} synthetic 150px scenes')]
    for d, size, what in sets:
        files = list(get_image_files(d/'train' if (d/'train').is_dir() else d/'seg_train'/'seg_train')) + list(get_image_files(d/'valid') if (d/'valid').is_dir() else [])
        folder = TMP/'store_build'; shutil.rmtree(folder, ignore_errors=True)
        t = time.perf_counter(); st = image_store(files, size, folder, progress=False); build = time.perf_counter() - t
        t = time.perf_counter(); [np.asarray(SquishResize(size)(SceneImage.create(f))) for f in files[:min(len(files), 600)]]
        epoch = (time.perf_counter() - t)*len(files)/min(len(files), 600)
        mib = (st.path/'pixels.u8').stat().st_size/2**20
        rows.append(row('store', f"building the store: {len(files):,} images ({what}) at {size}px", 'seconds, one epoch of decoding in one thread / building the store',
                        round(build, 2), round(epoch, 2), unit='s', higher_better=False,
                        note=f"{mib:,.0f} MiB on disk; built with {defaults.cpus} threads; the decode epoch timed on {min(len(files), 600)} files"))
        shutil.rmtree(folder, ignore_errors=True)
    # memory: one epoch of the augmented training DataLoader at 224px, each in a fresh process (the store is built before)
    scene_dls(data, size=224, check='off', cache=True, progress=False)
    m = {c: _child('--store-child', 'epoch', str(int(c)), str(int(quick))) for c in (True, False)}
    rows.append(row('store', f"peak memory over one epoch of the training DataLoader, 224px, bs 32 ({m[True]['images']} images)",
                    'peak RSS with the store / without (fresh process each)', m[True]['peak_mb'], m[False]['peak_mb'], unit='MB', higher_better=False,
                    note=f"{src}; {m[True]['seconds']}s with, {m[False]['seconds']}s without; at the end, private (anonymous) memory {m[True]['anon_mb']} MB with, "
                         f"{m[False]['anon_mb']} MB without, file pages {m[True]['file_mb']} MB with, {m[False]['file_mb']} MB without: "
                         "RSS counts the store's pages, which are the page cache's, shared by every process that maps the file"))
    # the README's main job, with and without the store (quick: synthetic scenes)
    if quick: src = 'synthetic scenes'
    j = {c: _child('--store-child', 'job', str(int(c)), str(int(quick))) for c in (True, False)}
    what = f"{j[True]['arch']} 224px, {j[True]['epochs']} frozen epoch(s), lr 1e-2, bs 32, seed 42 ({j[True]['n_train']} training images)"
    rows.append(row('store', f"the README's main job: {what}: training seconds", 'seconds, without / with the store', j[True]['seconds'], j[False]['seconds'],
                    unit='s', higher_better=False, note=f"{src}; accuracy on valid {j[True]['accuracy']:.2%} with, {j[False]['accuracy']:.2%} without (the same pixels and seed)"))
    rows.append(row('store', f"the README's main job: {what}: training images/s", 'images/s, with the store / without', j[True]['images_s'], j[False]['images_s'],
                    note=f"{src}; training images x epochs / training seconds (the validation passes included)"))
    return rows

# ---------------------------------------------------------------- memory
def memory_child(kind:str, n:int, free:bool) -> dict:
    "Peak memory of a report or prediction run over `n` images, in this (fresh) process"
    import scene_cls.interpret as I, scene_cls.predict as P
    every = dict(report=16, predict=4)[kind] if free else 0   # 0: how the library behaved before `free_memory`
    syn = make_synthetic_scenes(TMP/'memory', n_train=4, n_valid=500, n_pred=512, size=150)
    set_seed(0)
    learn = scene_learner(scene_dls(syn, size=150, bs=64, check='off'), 'resnet18', weights=None)
    base, t = rss_mb(), time.time()
    if kind == 'report':
        items = list(learn.dls.valid.items)*max(1, n//3000)
        rep = I.scene_report(learn, TMP/f'memory_report_{n}', dl=learn.dls.test_dl(items[:n], with_labels=True), k=9, free_every=every)
        assert rep.metrics['n'] == n
    else:
        files = (list(pred_files(syn))*max(1, n//512))[:n]
        r = P.predict_csv(learn, files, TMP/'memory_preds.csv', bs=64, progress=False, free_every=every)
        assert r['files'] == n and r['failed'] == 0
    return dict(seconds=round(time.time() - t, 1), peak_mb=round(rss_mb()), before_mb=round(base))

def bench_memory(quick:bool) -> list:
    cases = [('predict', 128)] if quick else [('report', 3000), ('report', 12000), ('predict', 512), ('predict', 4096)]
    make_synthetic_scenes(TMP/'memory', n_train=4, n_valid=500, n_pred=512, size=150)   # here, not in the measured processes
    rows = []
    for kind, n in cases:
        res = {}
        for free in (1, 0):
            out = subprocess.run([sys.executable, '-m', 'bench.run', '--memory-child', kind, str(n), str(free)], capture_output=True, text=True, cwd=REPO)
            if out.returncode: raise RuntimeError(out.stderr[-3000:])
            res[free] = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row('memory', f"{'interpretation report' if kind == 'report' else 'scene-cls predict'} over {n:,} images, ResNet18 150px",
                        'peak RSS with free_memory / without it (fresh process each)', res[1]['peak_mb'], res[0]['peak_mb'], unit='MB',
                        higher_better=False, note=f"{res[1]['seconds']}s with, {res[0]['seconds']}s without; synthetic scenes"))
    return rows

# ---------------------------------------------------------------- accuracy under a fixed budget
def _acc_on(learn, folder) -> float:
    with learn.no_bar(): df, _ = scene_preds(learn, labelled_dl(learn, folder, bs=64))
    return round(float(df.correct.mean()), 4)

def bench_accuracy(quick:bool) -> list:
    what = 'accuracy on intel-sample/valid (300) and intel-extra (1,200)'
    if quick: return [not_measured('accuracy', what, 'our recipe vs fastai fine_tune vs linear probe', '--quick (training takes minutes)')]
    if not (SAMPLE/'train').is_dir(): return [not_measured('accuracy', what, 'our recipe vs fastai fine_tune vs linear probe', f'no real images at {SAMPLE}')]
    rows, arch, size = [], 'tf_efficientnet_lite0', 224
    # ours: the measured CPU recipe (what tests/test_real_images.py runs)
    set_seed(42, reproducible=True)
    dls_at = lambda s: scene_aug_dls(SAMPLE, size=s, bs=32, seed=42, check='off')
    learn = scene_learner(dls_at(size), arch, 'imagenet', path=TMP/'acc_ours')
    t = time.time()
    with learn.no_bar(), learn.no_logging(): fit_scene(learn, dls_at, TMP/'acc_ours', epochs=0, freeze_epochs=5, sizes=(size,), lr=1e-2)
    ours_t = round(time.time() - t)
    ours = (_acc_on(learn, SAMPLE), _acc_on(learn, EXTRA) if EXTRA.is_dir() else None)
    # plain fastai: fastai's head, fine_tune(2) after 1 frozen epoch, aug_transforms, default lr, BN trained
    set_seed(42, reproducible=True)
    dls = scene_dls(SAMPLE, size=size, bs=32, seed=42, check='off', batch_tfms=aug_transforms())
    model, stats, splitter = scene_model(arch, 6, 'imagenet', head='fastai')
    ft = Learner(normalized(dls, stats), model, splitter=splitter, metrics=accuracy, path=TMP/'acc_ft')
    channels_last_amp(ft); ft.freeze()
    t = time.time()
    with ft.no_bar(), ft.no_logging(): ft.fine_tune(2, freeze_epochs=1)
    ft_t = round(time.time() - t)
    ftacc = (_acc_on(ft, SAMPLE), _acc_on(ft, EXTRA) if EXTRA.is_dir() else None)
    # linear probe: logistic regression on the frozen body's pooled 224px features
    from sklearn.linear_model import LogisticRegression
    body = scene_model(arch, 6, 'imagenet')[0][0].eval().to(memory_format=torch.channels_last)
    def feats(files):
        out = []
        with torch.inference_mode():
            for i in range(0, len(files), 64):
                x = Normalize.from_stats(*imagenet_stats, cuda=False)(TensorImage(pil_batch(files[i:i+64], size).float()/255))
                out.append(body(x.as_subclass(torch.Tensor)).mean((2, 3)))
        return torch.cat(out).numpy()
    t = time.time()
    tr = sorted((SAMPLE/'train').rglob('*.jpg'))
    clf = LogisticRegression(max_iter=3000, C=1.0).fit(feats(tr), [f.parent.name for f in tr])
    def probe_acc(folder):
        fs = sorted(Path(folder).rglob('*.jpg')); return round(float((clf.predict(feats(fs)) == np.array([f.parent.name for f in fs])).mean()), 4)
    lp = (probe_acc(SAMPLE/'valid'), probe_acc(EXTRA) if EXTRA.is_dir() else None)
    lp_t = round(time.time() - t)
    cmp = 'our recipe / plain fastai fine_tune'
    fmt = lambda a, s: f"valid {a[0]:.1%}, extra {a[1]:.1%}; {s}s" if a[1] is not None else f"valid {a[0]:.1%}; {s}s"
    rows.append(row('accuracy', f'{arch} {size}px on intel-extra (1,200 untouched images)', cmp, ours[1], ftacc[1], unit='accuracy',
                    note=f"ours (5 frozen epochs, lr 1e-2, bs 32): {fmt(ours, ours_t)}; fine_tune(2, freeze_epochs=1), aug_transforms: {fmt(ftacc, ft_t)}"))
    rows.append(row('accuracy', f'{arch} {size}px on intel-extra (1,200 untouched images)', 'our recipe / linear probe (logistic regression on frozen features)',
                    ours[1], lp[1], unit='accuracy', note=f"linear probe: {fmt(lp, lp_t)} (training and feature extraction)"))
    return rows

# ---------------------------------------------------------------- levers of accuracy, each against today's recipe
LITE0 = 'tf_efficientnet_lite0'
# name: (arch, sizes, frozen epochs, unfrozen epochs, lr of the frozen stage, top lr of the unfrozen stage, extras)
LEVERS = {
    'recipe: 5 frozen epochs (today)': (LITE0, (224,), 5, 0, 1e-2, None, dict(tta=True)),
    "3 frozen + 2 unfrozen, batchnorm trains (fastai's default), top lr 1e-3": (LITE0, (224,), 3, 2, 1e-2, 1e-3, dict(tta=True)),
    "2 frozen + 3 unfrozen, batchnorm trains, top lr 1e-4": (LITE0, (224,), 2, 3, 1e-2, 1e-4, {}),
    '2 frozen + 3 unfrozen, batchnorm frozen, top lr 1e-3': (LITE0, (224,), 2, 3, 1e-2, 1e-3, dict(freeze_bn=True)),
    '2 frozen + 3 unfrozen, batchnorm frozen, top lr 1e-4': (LITE0, (224,), 2, 3, 1e-2, 1e-4, dict(freeze_bn=True)),
    'Lite1, 5 frozen epochs': ('tf_efficientnet_lite1', (224,), 5, 0, 1e-2, None, {}),
    'Lite2, 5 frozen epochs': ('tf_efficientnet_lite2', (224,), 5, 0, 1e-2, None, {}),
    '2 frozen + 8 unfrozen, batchnorm frozen, top lr 1e-3': (LITE0, (224,), 2, 8, 1e-2, 1e-3, dict(freeze_bn=True)),
    'the main job (2 frozen + 3 unfrozen, batchnorm frozen, top lr 1e-3) without label smoothing': (LITE0, (224,), 2, 3, 1e-2, 1e-3, dict(freeze_bn=True, label_smoothing=0)),
    'Lite1, 2 frozen + 3 unfrozen, batchnorm frozen, top lr 1e-3': ('tf_efficientnet_lite1', (224,), 2, 3, 1e-2, 1e-3, dict(freeze_bn=True)),
    'Lite2, 2 frozen + 3 unfrozen, batchnorm frozen, top lr 1e-3': ('tf_efficientnet_lite2', (224,), 2, 3, 1e-2, 1e-3, dict(freeze_bn=True)),
    'self-training: the recipe as teacher, 3,000 unlabelled images (confidence >= 0.9, balanced), the recipe as student':
        (LITE0, (224,), 5, 0, 1e-2, None, dict(self_train=True)),
    'self-training: the main job (2 frozen + 3 unfrozen, batchnorm frozen) as teacher and as student':
        (LITE0, (224,), 2, 3, 1e-2, 1e-3, dict(self_train=True, freeze_bn=True)),
}

def lever_child(name:str, seed:int, quick:bool) -> dict:
    "Train one lever on the 900 sample images in this (fresh) process; accuracy on valid and intel-extra, with and without TTA"
    arch, sizes, fe, ue, lr, ulr, extra = LEVERS[name]
    data = SAMPLE if not quick else synthetic(n_train=20, n_valid=4, n_pred=12)
    if quick: arch, sizes, fe, ue = 'resnet18', (64,), min(fe, 1), min(ue, 1)
    set_seed(seed, reproducible=True)
    dls_at = lambda s: scene_aug_dls(data, size=s, bs=32, seed=seed, check='off', progress=False)
    learn = scene_learner(dls_at(sizes[0]), arch, None if quick else 'imagenet', label_smoothing=extra.get('label_smoothing', 0.1), path=TMP/'lever')
    if extra.get('mixup'): learn.add_cb(MixUp(extra['mixup']))
    if extra.get('self_train'): return _self_train_child(name, seed, quick, data, arch, sizes, fe, ue, lr, ulr, extra.get('freeze_bn', False))
    t = time.time()
    with learn.no_bar(), learn.no_logging():
        if fe: learn.fit_one_cycle(fe, lr, pct_start=0.25)
        per = [ue//len(sizes) + (i < ue % len(sizes)) for i in range(len(sizes))]
        for s, e in zip(sizes, per):
            if not e: continue
            learn.dls = normalized(dls_at(s), learn.stats); learn.unfreeze()
            if extra.get('freeze_bn'):   # batchnorm keeps its ImageNet statistics and weights (BnFreezeAll keeps frozen ones in eval mode)
                for m in learn.model.modules():
                    if isinstance(m, nn.modules.batchnorm._BatchNorm): m.requires_grad_(False)
            learn.fit_one_cycle(e, slice(ulr/100, ulr), pct_start=0.3, div=5)
    secs = round(time.time() - t, 1)
    res = dict(name=name, seed=seed, seconds=secs, valid=_acc_on(learn, data))
    if EXTRA.is_dir() and not quick:
        dl = labelled_dl(learn, EXTRA, bs=64)
        with learn.no_bar():
            res['extra'] = round(float(learn.validate(dl=dl)[1]), 4)
            if extra.get('tta'):   # test-time augmentation: 4 augmented passes and the plain one (fastai's tta); 5x the evaluation time
                p, y = learn.tta(dl=dl, n=4); res['extra_tta'] = round(float((p.argmax(1) == y).float().mean()), 4)
    return res

def _self_train_child(name, seed, quick, data, arch, sizes, fe, ue, lr, ulr=None, freeze_bn=False) -> dict:
    "`self_train` with the recipe as teacher and student; the student's accuracy (the teacher's beside it)"
    from scene_cls.selftrain import self_train
    out = TMP/f'lever_selftrain_{seed}'; shutil.rmtree(out, ignore_errors=True)
    unl = data/'seg_pred'/'seg_pred' if quick else UNLABELLED
    t = time.time()
    r = self_train(data, unl, out, threshold=0.2 if quick else 0.9, arch=arch, weights='none' if quick else 'imagenet', sizes=sizes, epochs=ue, freeze_epochs=fe,
                   bs=32, lr=lr, seed=seed, check='off', k=2, progress=False, unfrozen_lr=ulr, freeze_bn=freeze_bn)
    res = dict(name=name, seed=seed, seconds=round(time.time() - t, 1), valid=round(r['accuracy'], 4), teacher_valid=round(r['teacher_accuracy'], 4),
               n_pseudo=r['n_pseudo'])
    if EXTRA.is_dir() and not quick:
        for who, f in (('extra', out/'model.pkl'), ('teacher_extra', out/'teacher'/'model.pkl')): res[who] = _acc_on(load_scene_learner(f, cpu=True), EXTRA)
    return res

def bench_levers(quick:bool) -> list:
    "Each lever of accuracy on 2 CPU cores, seeds 42, 0, 1 (SCENE_CLS_BENCH_SEEDS), from the 900 sample images: intel-extra and valid, training seconds"
    if not quick and not (SAMPLE/'train').is_dir(): return [not_measured('levers', 'levers of accuracy', '', f'no real images at {SAMPLE}')]
    seeds = [int(x) for x in os.environ.get('SCENE_CLS_BENCH_SEEDS', '42' if quick else '42,0,1').split(',')]
    names = [n for n in LEVERS if not os.environ.get('SCENE_CLS_BENCH_LEVERS') or n in os.environ['SCENE_CLS_BENCH_LEVERS'].split(';')]
    rows, base = [], None
    for name in ([names[0], names[-1]] if quick and len(names) > 1 else names):   # quick: the plain path and the self-training one
        rs = [_child('--lever-child', name, str(sd), str(int(quick))) for sd in seeds]
        m = lambda k: round(float(np.mean([r[k] for r in rs])), 4) if k in rs[0] else None
        spread = lambda k: f"{min(r[k] for r in rs):.1%}-{max(r[k] for r in rs):.1%}" if k in rs[0] else ''
        key = 'valid' if quick else 'extra'
        tta = f", with TTA {m('extra_tta'):.1%}" if 'extra_tta' in rs[0] else ''
        if 'teacher_valid' in rs[0]:   # self-training: its teacher beside it
            tta += f" (its teacher: extra {m('teacher_extra') or 0:.1%}, valid {m('teacher_valid'):.1%}; {m('n_pseudo'):.0f} pseudo-labels)" 
        if name.startswith('recipe'): base = m(key)   # the ratio is against today's recipe, when this run measured it
        rows.append(row('levers', f"{name} ({LEVERS[name][0]}, {'->'.join(map(str, LEVERS[name][1]))}px)", f"accuracy on {'valid' if quick else 'intel-extra'}, this / today's recipe (mean of {len(rs)} seed(s))",
                        m(key), base, unit='accuracy',
                        note=(f"extra {m('extra'):.1%} ({spread('extra')}){tta}; " if 'extra' in rs[0] else 'synthetic scenes; ') +
                             f"valid {m('valid'):.1%} ({spread('valid')}); "
                             f"{np.mean([r['seconds'] for r in rs]):.0f}s of training; seeds {','.join(map(str, seeds))}"))
    return rows

# ---------------------------------------------------------------- label cleaning
def bench_clean(quick:bool) -> list:
    "The fast finder's time, the label noise it sees in valid, and the recipe trained with and without its suspects"
    from scene_cls.clean import clean_scene_data, compare_exclusion, exclusion_summary
    arch, size = 'tf_efficientnet_lite0', 224
    if quick or not (SAMPLE/'train').is_dir():
        data, src, size = synthetic(n_train=20, n_valid=4), 'synthetic scenes', 64
    else: data, src = SAMPLE, 'real intel-sample'
    t = time.time(); tr = clean_scene_data(data, TMP/'clean', arch=arch, weights='imagenet', size=size, bs=64); secs = round(time.time() - t, 1)
    rows = [row('clean', f'finding label issues, fast path ({arch} {size}px features + 5-fold logistic regression), {len(tr)} {src} training images',
                'seconds', secs, unit='s', higher_better=False, note=f'{int(tr.label_issue.sum())} flagged as label issues ({tr.label_issue.mean():.1%}); {src}')]
    what = 'our recipe with / without the flagged training images, 3 seeds'
    if quick or src != 'real intel-sample':
        return rows + [not_measured('clean', what, 'accuracy, cleaned / all', '--quick (training takes minutes)' if quick else f'no real images at {SAMPLE}')]
    va = clean_scene_data(data, TMP/'clean_valid', split='valid', arch=arch, weights='imagenet', size=size, bs=64)
    rows.append(row('clean', f'label noise in intel-sample/valid ({len(va)} images), same finder', 'share of images flagged', round(float(va.label_issue.mean()), 4),
                    unit='share', note=f"{int(va.label_issue.sum())} flagged: an estimate of the error no model avoids there"))
    res = compare_exclusion(data, TMP/'clean/exclude.txt', seeds=(0, 1, 2), eval_dirs={'intel-extra': EXTRA} if EXTRA.is_dir() else None,
                            arch=arch, weights='imagenet', size=size, bs=32, freeze_epochs=5, epochs=0, lr=1e-2, run_dir=TMP/'clean_cmp', check='off')
    res.to_csv(TMP/'clean_compare.csv', index=False)
    summ = exclusion_summary(res)
    for ev, r in summ.iterrows():
        rows.append(row('clean', f'{what}: accuracy on {ev}', 'accuracy, cleaned / all (mean over seeds)', round(r.mean_cleaned, 4), round(r.mean_all, 4),
                        unit='accuracy', note=f"cleaned {r.mean_cleaned:.2%} ({r.min_cleaned:.1%}-{r.max_cleaned:.1%}), all {r.mean_all:.2%} "
                        f"({r.min_all:.1%}-{r.max_all:.1%}); difference {r.diff_mean:+.2%} +- {r.diff_std:.2%} over seeds; "
                        f"{int(tr.label_issue.sum())} of {len(tr)} training images left out; {arch} {size}px, 5 frozen epochs, lr 1e-2, bs 32"))
    return rows

# ---------------------------------------------------------------- GPU
GPU_WHATS = ['ResNet50 150px training step, {}'.format(k) for k in ('float32, contiguous', 'mixed precision', 'channels-last', 'mixed precision + channels-last')] + \
            ['training DataLoader feeding the GPU, 150px, bs 64, num_workers={}'.format(w) for w in ('0', '2', '4', 'every CPU')] + \
            ['ResNet50 150px epoch, 2 GPUs / 1 GPU (accelerate launch)',
             'training DataLoader feeding the GPU, 150px, bs 64, num_workers=0: image store / JPEG decoded every epoch',
             'ResNet50 150px epoch on 1 GPU: with the image store / without']

def gpu_step_rates(data:Path, device:str, size:int=150, bs:int=64, warmup:int=3, n:int=10) -> dict:
    "images/s of ResNet50 training steps at `size`, for each of fp32 / AMP / channels-last / both, on `device`"
    res = {}
    for amp, cl in ((False, False), (True, False), (False, True), (True, True)):
        set_seed(0)
        learn = scene_learner(scene_aug_dls(data, size=size, bs=bs, check='off', device=device), 'resnet50', weights=None, path=TMP/'gpu')
        learn.cbs = learn.cbs.filter(lambda c: not isinstance(c, (MixedPrecision, ChannelsLast)))
        learn.model.to(memory_format=torch.contiguous_format)
        if cl: learn.add_cb(ChannelsLastModel()); learn.model.to(memory_format=torch.channels_last)
        if amp: learn.add_cb(DeviceMixedPrecision())
        clock = BatchClock(warmup, n)
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(clock):
            learn.fit(1, 1e-3)
        if device.startswith('cuda'): torch.cuda.synchronize()
        res[(amp, cl)] = rate(n*bs, clock.secs)
    return res

def gpu_loader_rates(data:Path, device:str, workers:list, n:int=10, bs:int=64, cache=False) -> dict:
    "images/s of the training DataLoader (decode, resize, or the image store; batch augmentations on `device`) at each worker count"
    res = {}
    for w in workers:
        dl = scene_aug_dls(data, size=150, bs=bs, check='off', num_workers=w, device=device, cache=cache, progress=False).train
        it = iter(dl); next(it)
        t = time.perf_counter()
        for _ in range(n): next(it)
        if device.startswith('cuda'): torch.cuda.synchronize()
        res[w] = rate(n*bs, time.perf_counter() - t); del it
    return res

def gpu_launch_seconds(data:Path, n:int, arch:str='resnet50', size:int=150, bs:int=64, cache:str='auto') -> float:
    "Training seconds of one unfrozen epoch of `arch` at `size`, in `n` processes (accelerate launch, one per GPU; gloo on a CPU)"
    out = TMP/f'gpu_launch_{n}'
    shutil.rmtree(out, ignore_errors=True)
    launcher = [sys.executable, '-m', 'accelerate.commands.launch', '--num_processes', str(n), '--num_machines', '1', '--mixed_precision', 'no',
                '--dynamo_backend', 'no'] + (['--multi_gpu'] if n > 1 else [])
    r = subprocess.run(launcher + ['-m', 'scene_cls.cli', 'train', '--data', str(data), '--arch', arch, '--size', str(size), '--weights', 'none',
                       '--freeze-epochs', '0', '--epochs', '1', '--lr', '1e-3', '--bs', str(bs), '--check', 'off', '--k', '2', '--out', str(out), '--no-progress', '--cache', cache], capture_output=True, text=True, cwd=REPO)
    if r.returncode: raise RuntimeError(r.stderr[-3000:])
    return json.loads((out/'run.json').read_text())['train_seconds']

def bench_gpu(quick:bool) -> list:
    "On a GPU (under 8 minutes on one T4): the training step with and without AMP / channels-last, the DataLoader's workers, 1 vs 2 GPUs"
    if not torch.cuda.is_available(): return [not_measured('gpu', w, '', 'no GPU') for w in GPU_WHATS]
    name, cpus = torch.cuda.get_device_name(), os.cpu_count()
    data = synthetic(n_train=100 if quick else 400, n_valid=20)    # 150px scenes: the compute of the real ones
    n = 3 if quick else 20
    steps = gpu_step_rates(data, 'cuda', n=n)
    base = steps[(False, False)]
    rows = [row('gpu', w, f'{name}: images/s, this / float32 contiguous', steps[k], base, note=f'synthetic 150px scenes; {n} steps after 3; bs 64, random weights')
            for w, k in zip(GPU_WHATS[:4], ((False, False), (True, False), (False, True), (True, True)))]
    workers = [0, 2, 4, cpus]
    loads = gpu_loader_rates(data, 'cuda', workers, n=3 if quick else 10)
    rows += [row('gpu', w, f'images/s, this / num_workers=0 ({cpus} CPUs)', loads[k], loads[0], note='synthetic 150px scenes; decode on the CPU, augment on the GPU')
             for w, k in zip(GPU_WHATS[4:8], workers)]
    if torch.cuda.device_count() < 2: rows.append(not_measured('gpu', GPU_WHATS[8], '', 'one GPU'))
    else:
        one, two = gpu_launch_seconds(data, 1), gpu_launch_seconds(data, 2)
        rows.append(row('gpu', GPU_WHATS[8], 'seconds, 1 GPU / 2 GPUs (bs 64 in all: 32 per GPU)', two, one, unit='s', higher_better=False,
                        note=f"{len(get_image_files(data/'seg_train'))} synthetic scenes; one unfrozen epoch; the same steps per epoch"))
    stored = gpu_loader_rates(data, 'cuda', [0], n=3 if quick else 10, cache=True)
    rows.append(row('gpu', GPU_WHATS[9], 'images/s, image store / JPEG (num_workers=0)', stored[0], loads[0], note='synthetic 150px scenes; augment on the GPU'))
    with_, without = gpu_launch_seconds(data, 1, cache='auto'), gpu_launch_seconds(data, 1, cache='off')
    rows.append(row('gpu', GPU_WHATS[10], 'seconds, without / with the store', with_, without, unit='s', higher_better=False,
                    note=f"{len(get_image_files(data/'seg_train'))} synthetic scenes; one unfrozen epoch, mixed precision, channels-last"))
    return rows

# ---------------------------------------------------------------- the light install, and serving under load (bench/light.py)
def _light_models(quick:bool) -> tuple:
    "(model.pkl, model.onnx) of a random-weights Lite0 at 224 px: the speed of start-up and serving does not depend on the weights"
    learn, _ = _bench_model('tf_efficientnet_lite0', 224, quick=True)
    pkl, onnx = TMP/'light'/'model.pkl', TMP/'light'/'model.onnx'
    export_scene_learner(learn, pkl); export_onnx(learn, onnx, check=None)
    return pkl, onnx

def bench_light(quick:bool) -> list:
    from bench.light import bench_light as light
    _, onnx = _light_models(quick)
    return light(quick, onnx, pred_files(synthetic(n_train=1, n_valid=1, n_pred=1))[0])

def bench_serve(quick:bool) -> list:
    from bench.light import serve_load, load_rows
    files = real_files(EXTRA, 24) or list(pred_files(synthetic(n_train=1, n_valid=1, n_pred=24)))
    bad = TMP/'serve-bad'; bad.mkdir(parents=True, exist_ok=True)
    (bad/'notes.jpg').write_text('not an image'); (bad/'empty.jpg').write_bytes(b''); (bad/'cut.jpg').write_bytes(Path(files[0]).read_bytes()[:300])
    seconds, clients, rows = (8 if quick else 60), 8, []
    for kind, model in zip(('model.pkl', 'model.onnx'), _light_models(quick)):
        good = {Path(r['path']): r['predicted'] for r in predict_rows(load_scene_model(model), files, progress=False)}
        res = serve_load(model, good, sorted(bad.iterdir()), seconds, clients)
        print(json.dumps(res), flush=True)
        rows += load_rows(kind, res, seconds, clients)
    return rows

# ---------------------------------------------------------------- the table
GROUPS = dict(train=bench_train, infer=bench_infer, onnx=bench_onnx, app=bench_app, augment=bench_augment, dataloader=bench_dataloader, store=bench_store, memory=bench_memory,
              accuracy=bench_accuracy, levers=bench_levers, clean=bench_clean, light=bench_light, serve=bench_serve, gpu=bench_gpu)

def _cell(v, unit):
    if v is None: return ''
    if unit == 's' and v < 10: return f'{v:.3f}'
    return f'{v:.1%}' if unit == 'accuracy' else (f'{v:,.0f} {unit}' if unit == 'MB' else f'{v:,.1f}')

def markdown(res:dict) -> str:
    h = res['hardware']
    head = (f"Measured {res['date']} on {h['cpu_count']} CPU core(s), {h['gpu'] or 'no GPU'}, torch {res['versions']['torch']}, "
            f"{h['torch_threads']} torch threads, with `{res['command']}`{' (QUICK: machinery check, not results)' if res['quick'] else ''}.\n\n")
    lines = ['| what | compares | ours | plain | ours / plain | note |', '|---|---|---|---|---|---|']
    for r in res['rows']:
        unit = '' if r['unit'] in ('accuracy', 'MB') else f" {r['unit']}"
        lines.append(f"| {r['what']} | {r['compares']} | {_cell(r['ours'], r['unit'])} | {_cell(r['plain'], r['unit'])} | "
                     f"{'' if r['ratio'] is None else format(r['ratio'], '.2f')} | {r['note']} |")
    return head + '\n'.join(lines) + '\n\nImages/s unless the row says otherwise; above 1 in the ratio column is better for scene_cls.\n'

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
        try: rows += GROUPS[g](a.quick)
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
        (out/'results.md').write_text(markdown(res))
    print(f"{len(res['rows'])} rows ({len(rows)} measured now) in {res['seconds']}s -> {out/'results.json'}, {out/'results.md'}")
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__': main()
