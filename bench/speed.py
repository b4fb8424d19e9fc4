"""Speed: training and inference throughput, ONNX Runtime, the web demo, the augmentations and the DataLoader, and the
light install and serving (`bench/light.py`), each beside the plain alternative."""
from bench.stack import *

# ---------------------------------------------------------------- training throughput
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
    def ours():
        clock = BatchClock(warmup, n)
        with learn.no_bar(), learn.no_logging(), learn.added_cbs(clock):
            fit_scene(learn, dls_at, TMP/'train_run', epochs=0 if frozen else 1, freeze_epochs=1 if frozen else 0, sizes=(size,), lr=1e-3)
        return rate(n*bs, clock.secs)
    res = interleaved_best(dict(ours=ours, plain=lambda: plain_train(learn.model, items, labels, size, bs, learn.stats, frozen, aug, warmup, n)), reps)
    return dict(ours=res['ours'], plain=res['plain'], bs=bs,
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
        def predict():
            t = time.perf_counter(); r = predict_csv(learn, files, TMP/'preds.csv', bs=bs, progress=False)
            assert r['files'] == len(files) and r['failed'] == 0, r
            return rate(len(files), time.perf_counter() - t)
        def interpret():
            dl = learn.dls.test_dl(labelled, with_labels=True, bs=bs)   # what `labelled_dl` makes, over these files
            with learn.no_bar(): t = time.perf_counter(); scene_preds(learn, dl); return rate(len(files), time.perf_counter() - t)
        res = interleaved_best(dict(plain=lambda: plain_infer(learn.model, files, size, bs, learn.stats), predict=predict,
                                    **(dict(interpret=interpret) if labelled else {})), 1 if quick else 2)
        plain = res['plain']
        rows.append(row('infer', f'scene-cls predict, {arch} {size}px, {len(files)} files, bs {bs}', 'predict_csv / plain loop (same model)',
                        res['predict'], plain, note=src))
        if 'interpret' in res:
            rows.append(row('infer', f'scene-cls interpret evaluation, {arch} {size}px, {len(files)} files', 'scene_preds on labelled_dl / plain loop',
                            res['interpret'], plain, note=src))
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
        reps = 1 if quick else 2
        res = interleaved_best(dict(raw=raw, onnx=lambda: via(m, TMP/'onnx.csv'), torch=lambda: via(learn, TMP/'torch.csv')), reps)
        a, b = pd.read_csv(TMP/'torch.csv'), pd.read_csv(TMP/'onnx.csv')
        same, dconf = int((a.predicted == b.predicted).sum()), float((a.confidence - b.confidence).abs().max())
        weights = 'ImageNet body, head fitted 1 epoch on intel-sample' if trained else 'random weights'
        what = f'{arch} {size}px, {len(files)} files, bs {bs}'
        rows.append(row('onnx', f'scene-cls predict with the .onnx model, {what}', 'ONNX predict / raw onnxruntime on pre-decoded tensors',
                        res['onnx'], res['raw'], note=f'{src}; best of {reps}'))
        rows.append(row('onnx', f'scene-cls predict, .onnx against model.pkl, {what}', 'ONNX predict / PyTorch predict (model.pkl)',
                        res['onnx'], res['torch'],
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
        rows.append(row('app', f"{what}, Grad-CAM {'on' if cam else 'off'}", 'through the app (HTTP upload, queue, answer) / classify_file in process',
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
    reps = 1 if quick else 3
    res = interleaved_best(dict(ours=lambda: speed(scene_augs(), it), theirs=lambda: speed(setup_aug_tfms(aug_transforms()), it)), reps)
    return [row('augment', 'augmentations, batch of 64 at 150px', 'scene_augs / fastai aug_transforms', res['ours'], res['theirs'],
                note=f"{src}; median of {it} batches, best of {reps} interleaved runs")]

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
