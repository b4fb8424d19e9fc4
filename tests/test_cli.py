"The command line as a user runs it: whole runs, every output file parsed, every mistake a clean message."
import json, shutil
from pathlib import Path
import pandas as pd, pytest
from PIL import Image
from conftest import run_cli, mixed_folder, TINY
from scene_cls.synthetic import make_broken_images, make_synthetic_scenes

def assert_png(f, min_side=100):
    "A real, non-blank PNG"
    im = Image.open(f); im.load()
    assert im.format == 'PNG' and min(im.size) >= min_side, (f, im.size)
    lo, hi = im.convert('L').getextrema()
    assert hi - lo > 50, f"{f} looks blank"

@pytest.fixture(scope='module')
def trained(synthetic, tmp_path_factory):
    "One short train run on synthetic scenes, learning rate from lr_find"
    out = tmp_path_factory.mktemp('run')/'run'
    r = run_cli('train', '--data', synthetic, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 'valley', '--lr-find-it', 12, '--out', out, '--k', 4)
    assert r.returncode == 0, r.stderr
    return out, r

def test_train_writes_the_run_folder(trained, synthetic):
    out, r = trained
    assert r.stdout.splitlines()[0] == f"Data: {synthetic}"
    for f in ('model.pkl', 'log.csv', 'lr_find.png', 'aug_batch.png', 'state.json', 'run.json', 'checkpoint.pth',
              'report/report.md', 'report/metrics.json', 'report/predictions.csv', 'report/confusion_matrix.png',
              'report/top_losses.png', 'report/gradcam.png'):
        assert (out/f).is_file(), f
    log = pd.read_csv(out/'log.csv')
    assert log.epoch.tolist() == [0] and {'train_loss', 'valid_loss', 'accuracy', 'lr'} <= set(log.columns)
    run = json.loads((out/'run.json').read_text())
    m = json.loads((out/'report/metrics.json').read_text())
    assert run['accuracy'] == m['accuracy'] and m['n'] == 24 and 1e-7 < run['lr'] < 1
    assert log.steps.tolist() == [run['n_train']//8]        # optimizer steps per epoch (bs 8); the same in a launch of two
    assert len(pd.read_csv(out/'report/predictions.csv')) == 24
    for f in ('lr_find.png', 'aug_batch.png', 'report/confusion_matrix.png', 'report/top_losses.png', 'report/gradcam.png'):
        assert_png(out/f)
    assert f"{m['accuracy']:.2%}" in r.stdout.splitlines()[-1]

def test_the_image_store_trains_the_same_model(synthetic, tmp_path):
    "Decoded once into a store or decoded every epoch: the same pixels, the same seed, so the same losses to the last digit"
    args = ['train', '--data', synthetic, *TINY, '--epochs', 1, '--freeze-epochs', 1, '--lr', 1e-3, '--k', 2, '--no-progress']
    off = run_cli(*args, '--out', tmp_path/'off', '--cache', 'off')
    on = run_cli(*args, '--out', tmp_path/'on', '--cache', tmp_path/'stores')
    assert off.returncode == 0 and on.returncode == 0, off.stderr + on.stderr
    assert 'Image store:' not in off.stdout and on.stdout.count('Image store:') == 1, on.stdout
    stores = sorted(p.name for p in (tmp_path/'stores').iterdir())
    assert len(stores) == 1 and stores[0].split('-')[1] == '48px', stores
    cols = ['train_loss', 'valid_loss', 'accuracy']
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path/'off'/'log.csv')[cols], pd.read_csv(tmp_path/'on'/'log.csv')[cols])
    again = run_cli(*args, '--out', tmp_path/'again', '--cache', tmp_path/'stores')
    assert again.returncode == 0 and 'Image store:' not in again.stdout, again.stdout   # the store is reused, not built again

def test_self_training_teacher_pseudo_labels_student(synthetic, tmp_path):
    "train --unlabelled: a teacher run, a pseudo-label CSV accounting for every file, a student trained on both"
    unl = tmp_path/'unl'; shutil.copytree(synthetic/'seg_pred/seg_pred', unl); (unl/'notes.txt').write_text('not an image')
    out = tmp_path/'student'
    r = run_cli('train', '--data', synthetic, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 3e-3, '--k', 2, '--no-progress',
                '--unlabelled', unl, '--threshold', 0.2, '--out', out)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out/'teacher'/'model.pkl').is_file() and (out/'model.pkl').is_file()
    pl = pd.read_csv(out/'pseudo_labels.csv', keep_default_na=False)
    assert len(pl) == 6 and pl[pl.file.str.endswith('notes.txt')].keep.tolist() == [False]        # every file has its row
    assert set(pl.columns) == {'file', 'label', 'confidence', 'keep', 'error'}
    run, teacher = json.loads((out/'run.json').read_text()), json.loads((out/'teacher'/'run.json').read_text())
    assert run['n_pseudo'] == int(pl.keep.sum()) and run['n_train'] == teacher['n_train'] + run['n_pseudo']
    assert run['teacher_accuracy'] == teacher['accuracy'] and 'Teacher ' in r.stdout.splitlines()[-1], r.stdout[-500:]
    bad = run_cli('train', '--data', synthetic, *TINY, '--teacher', out/'model.pkl', '--out', tmp_path/'x')
    assert bad.returncode != 0 and '--unlabelled' in bad.stderr.strip().splitlines()[-1]

def test_predict_and_interpret_with_the_exported_model(trained, synthetic, tmp_path):
    out, _ = trained
    r = run_cli('predict', out/'model.pkl', synthetic/'seg_pred', '--out', tmp_path/'p.csv', '--no-progress')
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    assert sorted(Path(p).name for p in df.path) == [f'{i:05d}.jpg' for i in range(5)]
    assert df.error.eq('').all() and df.confidence.between(0, 1).all()
    assert "5 files: 5 predicted, 0 failed" in r.stdout
    r = run_cli('interpret', out/'model.pkl', synthetic, '--out', tmp_path/'rep', '--k', 3, '--no-gradcam')
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path/'rep/metrics.json').read_text())['n'] == 24
    assert not (tmp_path/'rep/gradcam.png').exists() and (tmp_path/'rep/top_losses.png').exists()

def test_predict_accounts_for_every_file(trained, synthetic, tmp_path):
    out, _ = trained
    folder = tmp_path/'mixed'
    kinds = mixed_folder(synthetic, folder, 2)
    r = run_cli('predict', out/'model.pkl', folder, folder/'good.jpg', '--out', tmp_path/'p.csv', '--bs', 3)
    assert r.returncode == 1                                     # some files failed
    df = pd.read_csv(tmp_path/'p.csv', keep_default_na=False)
    n_files = len(list(folder.iterdir())) + 1                    # good.jpg is given twice: two inputs, two rows
    assert len(df) == n_files
    assert sorted(Path(p).name for p in df.path) == sorted([f.name for f in folder.iterdir()] + ['good.jpg'])
    errors = {Path(p).name: e for p, e in zip(df.path, df.error) if e}
    assert set(errors) == {k for k, v in kinds.items() if v} | {'notes.txt'}
    assert 'empty' in errors['zero.jpg'] and 'corrupt' in errors['truncated.jpg'] and 'too small' in errors['one_pixel.png']
    ok = df[df.error == '']
    assert {'UPPER.JPG', 'café_été.jpg', 'gray.jpg', 'rgba.png', 'cmyk.jpg'} <= {Path(p).name for p in ok.path}
    assert ok.predicted.ne('').all() and ok.top3.str.count(':').eq(3).all()
    assert f"{n_files} files: {len(ok)} predicted, {len(errors)} failed" in r.stdout

def test_predict_reads_unusual_but_valid_inputs_faithfully(trained, synthetic, tmp_path):
    "EXIF orientation applied, 16-bit scaled to 8, a link that leads nowhere an error row"
    import numpy as np, os
    out, _ = trained
    folder = tmp_path/'odd'; folder.mkdir()
    up = Image.open(sorted((synthetic/'seg_pred/seg_pred').iterdir())[0]).convert('RGB').resize((64, 48))
    exif = Image.Exif(); exif[0x0112] = 6                                 # stored sideways: "rotate 90 to view"
    up.transpose(Image.Transpose.ROTATE_90).save(folder/'phone.jpg', exif=exif, quality=100)
    up.save(folder/'upright.jpg', quality=100)
    g8 = up.convert('L'); g8.save(folder/'gray8.png')
    Image.fromarray(np.asarray(g8).astype(np.uint16)*257).save(folder/'gray16.png')
    assert Image.open(folder/'gray16.png').mode.startswith('I')
    os.symlink(tmp_path/'gone.jpg', folder/'link.jpg')
    r = run_cli('predict', out/'model.pkl', folder, '--out', tmp_path/'p.csv', '--no-progress')
    assert r.returncode == 1, r.stderr                                   # the link failed
    df = pd.read_csv(tmp_path/'p.csv', keep_default_na=False).assign(name=lambda d: d.path.map(lambda p: Path(p).name)).set_index('name')
    assert sorted(df.index) == ['gray16.png', 'gray8.png', 'link.jpg', 'phone.jpg', 'upright.jpg']
    assert 'gone.jpg, which does not exist' in df.loc['link.jpg', 'error']
    assert df.loc['phone.jpg', 'predicted'] == df.loc['upright.jpg', 'predicted']
    assert abs(float(df.loc['phone.jpg', 'confidence']) - float(df.loc['upright.jpg', 'confidence'])) < 0.02, df
    assert df.loc['gray16.png', 'top3'] == df.loc['gray8.png', 'top3'], df

def test_help_and_advice_read_right_on_the_command_line(synthetic, tmp_path):
    r = run_cli('predict', '-h')
    lines = r.stdout.splitlines(); i = next(i for i, l in enumerate(lines) if l.lstrip().startswith('--progress, --no-progress'))
    assert 'progress bar' in ' '.join(lines[i:i+2]) and 'on by default' in ' '.join(lines[i:i+3]), lines[i:i+3]   # what it does, which holds
    bad = tmp_path/'dup'; shutil.copytree(synthetic, bad)
    shutil.copy(bad/'seg_train/seg_train/forest/forest_00000.jpg', bad/'seg_train/seg_train/sea/copy.jpg')
    r = run_cli('train', '--data', bad, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', tmp_path/'r', '--check', 'stop')
    assert r.returncode == 2 and '--check skip' in r.stderr, r.stderr   # refused, saying how to train without them

def test_check_and_training_on_broken_data(synthetic, tmp_path):
    bad = tmp_path/'bad'; shutil.copytree(synthetic, bad)
    make_broken_images(bad/'seg_train/seg_train/sea')
    r = run_cli('check', bad)
    assert r.returncode == 1 and 'truncated.jpg: corrupt' in r.stdout and 'FATAL' in r.stdout
    r = run_cli('train', '--data', bad, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', tmp_path/'r1', '--check', 'stop')
    assert r.returncode == 2 and 'truncated.jpg' in r.stderr and 'Traceback' not in r.stderr
    r = run_cli('train', '--data', bad, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', tmp_path/'r2', '--k', 2)   # skip: the default
    assert r.returncode == 0, r.stderr
    assert 'skipped' in r.stdout and (tmp_path/'r2/model.pkl').exists()

@pytest.mark.parametrize('args,msg', [
    (('train', '--data', 'NOWHERE'), 'no such folder'),
    (('train', '--data', 'SYN/seg_pred'), 'no training folder'),
    (('train', '--data', 'SYN', '--arch', 'resnet5000'), 'unknown architecture'),
    (('train', '--data', 'SYN', '--size', '8'), 'at least 32 pixels'),
    (('train', '--data', 'SYN', '--weights', 'NOWHERE/w.pth', '--arch', 'resnet18'), 'no such weights file'),
    (('train', '--data', 'SYN', '--resume', '--out', 'NOWHERE'), 'nothing to resume'),
    (('predict', 'FOREIGN', 'SYN'), 'not a model exported'),
    (('predict', 'NOWHERE/model.pkl', 'SYN'), 'no such model file'),
    (('interpret', 'FOREIGN', 'SYN'), 'not a model exported'),
    (('check', 'NOWHERE'), 'no such folder'),
])
def test_user_errors_are_one_clear_line(args, msg, synthetic, tmp_path):
    import torch
    torch.save({'fc.weight': torch.zeros(2, 2)}, tmp_path/'foreign.pth')   # a model file from plain PyTorch
    sub = {'NOWHERE': str(tmp_path/'nowhere'), 'SYN': str(synthetic), 'FOREIGN': str(tmp_path/'foreign.pth')}
    args = [sub.get(a.split('/')[0], a.split('/')[0]) + ('/' + a.split('/', 1)[1] if '/' in a else '') for a in args]
    r = run_cli(*args, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert 'Traceback' not in r.stderr and msg in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr

def test_no_data_falls_back_to_synthetic_and_says_so(tmp_path):
    env = {'HOME': str(tmp_path), 'SCENE_CLS_DATA': '', 'KAGGLE_USERNAME': '', 'KAGGLE_KEY': ''}
    r = run_cli('train', '--arch', 'resnet18', '--weights', 'none', '--size', 32, '--bs', 32, '--epochs', 1,
                '--freeze-epochs', 0, '--lr', 1e-3, '--out', tmp_path/'run', '--k', 2, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = r.stdout.splitlines()[0]
    assert first.startswith('Data: no scene data found, so using the embedded SYNTHETIC scenes') and str(tmp_path) in first
    assert (tmp_path/'.cache/scene_cls/synthetic-scenes/SYNTHETIC.txt').exists()

def test_help_lists_every_command():
    r = run_cli('--help')
    assert r.returncode == 0 and all(c in r.stdout for c in ('train', 'lr-find', 'interpret', 'check', 'predict'))
    r = run_cli('predict', '--help')
    assert r.returncode == 0 and '--tta' in r.stdout

def test_interpret_draws_its_bar_unless_told_not_to(trained, synthetic, tmp_path):
    out, _ = trained
    runs = {flag: run_cli('interpret', out/'model.pkl', synthetic, '--out', tmp_path/flag, '--k', 2, '--no-gradcam', *([flag] if flag else []))
            for flag in ('', '--no-progress')}
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    bar = lambda r: '% [' in r.stdout + r.stderr        # fastprogress's console bar: "100.00% [3/3 00:00<00:00]"
    assert bar(runs['']) and not bar(runs['--no-progress']), (runs[''].stdout[-500:], runs['--no-progress'].stdout[-500:])
