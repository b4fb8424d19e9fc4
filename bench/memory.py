"""Memory and the image store: decoding once against every epoch, peak memory, `free_memory` over long runs."""
from bench.stack import *

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
    # the 5-frozen-epoch recipe (the main job until 2026-11-30): Lite0, 224px, 5 frozen epochs, lr 1e-2, bs 32, seed 42 (quick: 1 epoch of a random-weight model)
    arch, weights, ep = ('resnet18', None, 1) if quick else ('tf_efficientnet_lite0', 'imagenet', 5)
    out = TMP/f'store_job_{int(cache)}'; shutil.rmtree(out, ignore_errors=True)
    run = scene_run(data, out, arch=arch, weights=weights, sizes=(224,), epochs=0, freeze_epochs=ep, bs=32, lr=1e-2, seed=42, check='off',
                    cache=cache, k=0, progress=False)
    return dict(seconds=run['train_seconds'], images_s=rate(run['n_train']*ep, run['train_seconds']), accuracy=round(run['accuracy'], 4),
                n_train=run['n_train'], arch=arch, epochs=ep)


def bench_store(quick:bool) -> list:
    "The decoded image store against decoding every epoch: the DataLoader alone, building it, memory, and the 5-frozen-epoch recipe (the main job until 2026-11-30)"
    n, rows = (3 if quick else 10), []
    data = SAMPLE if (SAMPLE/'train').is_dir() else synthetic(n_train=-(-(n + 1)*64//6), n_valid=4)
    src = 'real intel-sample' if data == SAMPLE else 'synthetic scenes'
    for aug in (False, True):
        f = scene_aug_dls if aug else scene_dls
        r = interleaved_best({c: (lambda c=c: loader_rate(f(data, size=150, bs=64, check='off', num_workers=0, device='cpu', cache=c, progress=False).train, n, 64))
                              for c in (False, True)}, 2)
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
        rows.append(row('store', f"building the store: {len(files):,} images ({what}) at {size}px", 'seconds, building the store / one epoch of decoding in one thread',
                        round(build, 2), round(epoch, 2), unit='s', higher_better=False,
                        note=f"{mib:,.0f} MiB on disk; built with {defaults.cpus} threads; the decode epoch timed on {min(len(files), 600)} files"))
        shutil.rmtree(folder, ignore_errors=True)
    # memory: one epoch of the augmented training DataLoader at 224px, each in a fresh process (the store is built before)
    scene_dls(data, size=224, check='off', cache=True, progress=False)
    m = {c: child('--store-child', 'epoch', str(int(c)), str(int(quick))) for c in (True, False)}
    rows.append(row('store', f"peak memory over one epoch of the training DataLoader, 224px, bs 32 ({m[True]['images']} images)",
                    'peak RSS with the store / without (fresh process each)', m[True]['peak_mb'], m[False]['peak_mb'], unit='MB', higher_better=False,
                    note=f"{src}; {m[True]['seconds']}s with, {m[False]['seconds']}s without; at the end, private (anonymous) memory {m[True]['anon_mb']} MB with, "
                         f"{m[False]['anon_mb']} MB without, file pages {m[True]['file_mb']} MB with, {m[False]['file_mb']} MB without: "
                         "RSS counts the store's pages, which are the page cache's, shared by every process that maps the file"))
    # the 5-frozen-epoch recipe (the main job until 2026-11-30), with and without the store (quick: synthetic scenes)
    if quick: src = 'synthetic scenes'
    j = {c: child('--store-child', 'job', str(int(c)), str(int(quick))) for c in (True, False)}
    what = f"{j[True]['arch']} 224px, {j[True]['epochs']} frozen epoch(s), lr 1e-2, bs 32, seed 42 ({j[True]['n_train']} training images)"
    rows.append(row('store', f"the 5-frozen-epoch recipe (the main job until 2026-11-30): {what}: training seconds", 'seconds, with the store / without', j[True]['seconds'], j[False]['seconds'],
                    unit='s', higher_better=False, note=f"{src}; accuracy on valid {j[True]['accuracy']:.2%} with, {j[False]['accuracy']:.2%} without (the same pixels and seed)"))
    rows.append(row('store', f"the 5-frozen-epoch recipe (the main job until 2026-11-30): {what}: training images/s", 'images/s, with the store / without', j[True]['images_s'], j[False]['images_s'],
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
