"""Accuracy: the recipe against plain fastai and a linear probe, the levers of accuracy over seeds, label cleaning."""
from bench.stack import *

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
    out = TMP/'acc_ours'; shutil.rmtree(out, ignore_errors=True)
    run = scene_run(SAMPLE, out, arch=arch, weights='imagenet', sizes=(size,), epochs=0, freeze_epochs=5, bs=32, lr=1e-2, seed=42, check='off', k=0, progress=False)
    ours_t, learn = round(run['train_seconds']), load_scene_learner(out/'model.pkl', cpu=True)
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
    "the first round's main job (2 frozen + 3 unfrozen, batchnorm frozen) with progressive resizing: 160 px, then the last unfrozen epoch at 224":
        (LITE0, (160, 224), 2, 3, 1e-2, 1e-3, dict(freeze_bn=True)),
    "the first round's main job (2 frozen + 3 unfrozen, batchnorm frozen) with fastai's MixUp (alpha 0.4)": (LITE0, (224,), 2, 3, 1e-2, 1e-3, dict(freeze_bn=True, mixup=0.4)),
    # scene-cls train's defaults (1 frozen + 3 unfrozen, batchnorm trains), with lr_find's valley and with two fixed rates
    "the command line's default recipe, lr from lr_find's valley (unfrozen top lr valley/2)": (LITE0, (224,), 1, 3, None, None, {}),
    "the command line's default recipe, lr 2e-3 (unfrozen top 1e-3: fastai's fine_tune)": (LITE0, (224,), 1, 3, 2e-3, None, {}),
    "the command line's default recipe, lr 1e-2, unfrozen top lr 1e-3 (the CPU recipe's rates)": (LITE0, (224,), 1, 3, 1e-2, 1e-3, {}),
    'self-training: the recipe as teacher, 3,000 unlabelled images (confidence >= 0.9, balanced), the recipe as student':
        (LITE0, (224,), 5, 0, 1e-2, None, dict(self_train=True)),
    'self-training: the main job (2 frozen + 3 unfrozen, batchnorm frozen) as teacher and as student':
        (LITE0, (224,), 2, 3, 1e-2, 1e-3, dict(self_train=True, freeze_bn=True)),
}

def lever_child(name:str, seed:int, quick:bool) -> dict:
    "Train one lever on the 900 sample images in this (fresh) process with `scene_run`, as `scene-cls train` would; accuracy on valid and intel-extra"
    arch, sizes, fe, ue, lr, ulr, extra = LEVERS[name]
    data = SAMPLE if not quick else synthetic(n_train=20, n_valid=4, n_pred=12)
    if quick: arch, sizes, fe, ue = 'resnet18', (64,), min(fe, 1), min(ue, 1)
    if extra.get('self_train'): return _self_train_child(name, seed, quick, data, arch, sizes, fe, ue, lr, ulr, extra.get('freeze_bn', False))
    out = TMP/f'lever_{seed}'; shutil.rmtree(out, ignore_errors=True)
    run = scene_run(data, out, arch=arch, weights='none' if quick else 'imagenet', sizes=sizes, epochs=ue, freeze_epochs=fe, bs=32, lr=lr, seed=seed,
                    check='off', k=0, progress=False, freeze_bn=extra.get('freeze_bn', False), unfrozen_lr=ulr,
                    label_smoothing=extra.get('label_smoothing', 0.1), mixup=extra.get('mixup', 0.))
    res = dict(name=name, seed=seed, seconds=run['train_seconds'], valid=round(run['accuracy'], 4), lr=run['lr'])
    if EXTRA.is_dir() and not quick:
        learn = load_scene_learner(out/'model.pkl', cpu=True)
        dl = labelled_dl(learn, EXTRA, bs=64)
        with learn.no_bar():
            res['extra'] = _acc_on(learn, EXTRA)
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
        rs = [child('--lever-child', name, str(sd), str(int(quick))) for sd in seeds]
        m = lambda k: round(float(np.mean([r[k] for r in rs])), 4) if k in rs[0] else None
        spread = lambda k: f"{min(r[k] for r in rs):.1%}-{max(r[k] for r in rs):.1%}" if k in rs[0] else ''
        key = 'valid' if quick else 'extra'
        tta = f", with TTA {m('extra_tta'):.1%}" if 'extra_tta' in rs[0] else ''
        if 'teacher_valid' in rs[0]:   # self-training: its teacher beside it
            tta += f" (its teacher: extra {m('teacher_extra') or 0:.1%}, valid {m('teacher_valid'):.1%}; {m('n_pseudo'):.0f} pseudo-labels)" 
        if LEVERS[name][4] is None and 'lr' in rs[0]: tta += f"; lr_find's valley {', '.join(format(r['lr'], '.1e') for r in rs)}"
        if name.startswith('recipe'): base = m(key)   # the ratio is against today's recipe, when this run measured it
        rows.append(row('levers', f"{name} ({LEVERS[name][0]}, {'->'.join(map(str, LEVERS[name][1]))}px)", f"accuracy on {'valid' if quick else 'intel-extra'}, this / today's recipe (mean of {len(rs)} seed(s))",
                        m(key), base, unit='accuracy',
                        note=(f"extra {m('extra'):.1%} ({spread('extra')}){tta}; " if 'extra' in rs[0] else 'synthetic scenes; ') +
                             f"valid {m('valid'):.1%} ({spread('valid')}); "
                             f"{np.mean([r['seconds'] for r in rs]):.0f}s of training; seeds {','.join(map(str, seeds))}"))
        rows[-1]['argv'] = ['env', f'SCENE_CLS_BENCH_LEVERS={name}', f"SCENE_CLS_BENCH_SEEDS={','.join(map(str, seeds))}", 'python', '-m', 'bench', '--only', 'levers']
    return rows

# ---------------------------------------------------------------- label cleaning
def bench_clean(quick:bool) -> list:
    "The fast finder's time, the label noise it sees in valid, and the recipe trained with and without its suspects"
    from scene_cls.clean import clean_scene_data
    arch, size = 'tf_efficientnet_lite0', 224
    if quick or not (SAMPLE/'train').is_dir():
        data, src, size = synthetic(n_train=20, n_valid=4), 'synthetic scenes', 64
    else: data, src = SAMPLE, 'real intel-sample'
    t = time.time(); tr = clean_scene_data(data, TMP/'clean', arch=arch, weights='imagenet', sizes=size, bs=64); secs = round(time.time() - t, 1)
    rows = [row('clean', f'finding label issues, fast path ({arch} {size}px features + 5-fold logistic regression), {len(tr)} {src} training images',
                'seconds', secs, unit='s', higher_better=False, note=f'{int(tr.label_issue.sum())} flagged as label issues ({tr.label_issue.mean():.1%}); {src}')]
    what = 'our recipe with / without the flagged training images, 3 seeds'
    if quick or src != 'real intel-sample':
        return rows + [not_measured('clean', what, 'accuracy, cleaned / all', '--quick (training takes minutes)' if quick else f'no real images at {SAMPLE}')]
    va = clean_scene_data(data, TMP/'clean_valid', split='valid', arch=arch, weights='imagenet', sizes=size, bs=64)
    rows.append(row('clean', f'label noise in intel-sample/valid ({len(va)} images), same finder', 'share of images flagged', round(float(va.label_issue.mean()), 4),
                    unit='share', note=f"{int(va.label_issue.sum())} flagged: an estimate of the error no model avoids there"))
    shutil.rmtree(TMP/'clean_cmp', ignore_errors=True)   # its finished runs would be taken as they are
    res = compare_exclusion(data, TMP/'clean/exclude.txt', seeds=(0, 1, 2), eval_dirs={'intel-extra': EXTRA} if EXTRA.is_dir() else None,
                            arch=arch, weights='imagenet', sizes=size, bs=32, freeze_epochs=5, epochs=0, lr=1e-2, run_dir=TMP/'clean_cmp', check='off')
    res.to_csv(TMP/'clean_compare.csv', index=False)
    summ = exclusion_summary(res)
    for ev, r in summ.iterrows():
        rows.append(row('clean', f'{what}: accuracy on {ev}', 'accuracy, cleaned / all (mean over seeds)', round(r.mean_cleaned, 4), round(r.mean_all, 4),
                        unit='accuracy', note=f"cleaned {r.mean_cleaned:.2%} ({r.min_cleaned:.1%}-{r.max_cleaned:.1%}), all {r.mean_all:.2%} "
                        f"({r.min_all:.1%}-{r.max_all:.1%}); difference {r.diff_mean:+.2%} +- {r.diff_std:.2%} over seeds; "
                        f"{int(tr.label_issue.sum())} of {len(tr)} training images left out; {arch} {size}px, 5 frozen epochs, lr 1e-2, bs 32"))
    return rows
