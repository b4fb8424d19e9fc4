"""The web demo in a real browser: `scene-cls serve` started by the test, driven by headless Chromium through Playwright.

Screenshots go to the test's temporary folder, or to $SCENE_CLS_SCREENSHOTS when that is set (to look at them)."""
import os, shutil, subprocess, sys, time
from pathlib import Path
import pandas as pd, pytest
from PIL import Image
from conftest import run_cli, scene_cls_cmd, TINY
from harness import start_server   # a server on a free port, waited for

pytest.importorskip('gradio', reason='the app extra is not installed (pip install "scene_cls[app]")')
sync_api = pytest.importorskip('playwright.sync_api', reason='playwright is not installed (pip install playwright)')

def browser_path():
    "Debian's chromium (what .ci/run installs), else Playwright's own download when there is one"
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name): return shutil.which(name)
    return None

@pytest.fixture(scope='module')
def app(synthetic, tmp_path_factory):
    "A tiny model trained on synthetic scenes, served by `scene-cls serve` on 127.0.0.1 with its own upload folder"
    tmp = tmp_path_factory.mktemp('app')
    r = run_cli('train', '--data', synthetic, *TINY, '--epochs', 1, '--freeze-epochs', 0, '--lr', 1e-3, '--out', tmp/'run', '--k', 2)
    assert r.returncode == 0, r.stderr
    uploads = tmp/'uploads'
    env = {**os.environ, 'GRADIO_TEMP_DIR': str(uploads), 'GRADIO_ANALYTICS_ENABLED': 'False', 'MPLBACKEND': 'Agg'}
    try: proc, url, _ = start_server(scene_cls_cmd() + ['serve', tmp/'run/model.pkl', '--examples', synthetic, '--upload-age', '1'], tmp/'serve.log', env, timeout=120)
    except RuntimeError as e: pytest.fail(f"scene-cls serve did not answer: {e}")
    yield dict(url=url, model=tmp/'run/model.pkl', uploads=uploads, tmp=tmp)
    proc.terminate(); proc.wait(30)

@pytest.fixture(scope='module')
def page(app):
    exe = browser_path()
    with sync_api.sync_playwright() as p:
        try: browser = p.chromium.launch(executable_path=exe, args=['--no-sandbox'])
        except Exception as e: pytest.skip(f"no browser can be started (install Debian's chromium: apt-get install chromium): {str(e).splitlines()[0]}")
        pg = browser.new_page(viewport={'width': 1200, 'height': 1000})
        pg.goto(app['url']); pg.wait_for_selector('#one-file input[type=file]', state='attached', timeout=60_000)
        yield pg
        browser.close()

def shot(page, app, name):
    dest = Path(os.environ.get('SCENE_CLS_SCREENSHOTS') or app['tmp']); dest.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500); page.screenshot(path=dest/name, full_page=True)
    im = Image.open(dest/name); assert im.format == 'PNG' and im.size[0] >= 1000
    return dest/name

def upload(page, f, expect):
    "Upload `f` in the one-image tab; wait for the answer about it (its name and `expect` in the status), return that"
    page.locator('#one-file input[type=file]').set_input_files(str(f))
    page.wait_for_function("([n, e]) => { const t = document.querySelector('#status').innerText; return t.includes(n) && t.includes(e); }",
                           arg=[Path(f).name, expect], timeout=60_000)
    return page.locator('#status').inner_text()

def uploaded_names(app, wait:float=10) -> list:
    "The files left in the upload folder once the answered ones may go (the server runs with --upload-age 1)"
    t = time.time()
    while True:
        left = sorted(f.name for f in app['uploads'].rglob('*') if f.is_file() and not f.name.startswith('tmp'))
        if not left or time.time() - t > wait: return left
        time.sleep(0.5)

def test_an_image_gets_what_predict_gives(app, page, synthetic, tmp_path):
    f = sorted((synthetic/'seg_test/seg_test/forest').iterdir())[0]
    mine = tmp_path/'my_scene.jpg'; shutil.copy(f, mine)
    r = run_cli('predict', app['model'], mine, '--out', tmp_path/'p.csv', '--no-progress')
    want = pd.read_csv(tmp_path/'p.csv').iloc[0]
    status = upload(page, mine, '%')
    assert status.split('(')[0].strip() == want.predicted and 'my_scene.jpg' in status, (status, want.predicted)
    assert f"{want.confidence:.1%}" in status, (status, want.confidence)
    top3 = page.locator('#top3').inner_text()
    assert want.predicted in top3.splitlines()[1:3], top3                    # the label's heading
    page.wait_for_selector('#gradcam img', timeout=30_000)                     # the Grad-CAM overlay is shown
    shot(page, app, 'app_one_image.png')
    assert 'my_scene.jpg' not in uploaded_names(app)                          # the upload is gone once answered (within --upload-age)

def test_bad_files_are_a_message_in_the_page(app, page, tmp_path):
    (tmp_path/'notes.jpg').write_text('this is text, not a JPEG')
    status = upload(page, tmp_path/'notes.jpg', 'Cannot classify')
    assert 'notes.jpg: not an image' in status and 'Traceback' not in page.content(), status
    shot(page, app, 'app_not_an_image.png')
    (tmp_path/'empty.png').touch()
    assert 'empty.png: empty file' in upload(page, tmp_path/'empty.png', 'Cannot classify')
    Image.new('1', (10_000, 9_000)).save(tmp_path/'bomb.png')                # 90 million pixels in a few kB
    assert 'bomb.png: too large (10000x9000' in upload(page, tmp_path/'bomb.png', 'Cannot classify')
    assert not {'notes.jpg', 'empty.png', 'bomb.png'} & set(uploaded_names(app))

def test_several_images_give_a_table_and_a_csv(app, page, synthetic, tmp_path):
    files = sorted((synthetic/'seg_pred/seg_pred').iterdir())[:3]
    (tmp_path/'bad.jpg').write_text('nope')
    page.get_by_role('tab', name='Several images').click()
    page.locator('#many-files input[type=file]').set_input_files([str(f) for f in files] + [str(tmp_path/'bad.jpg')])
    page.wait_for_selector('#csv a', timeout=60_000)
    table = page.locator('#table').inner_text()
    r = run_cli('predict', app['model'], *files, '--out', tmp_path/'p.csv', '--no-progress')
    for row in pd.read_csv(tmp_path/'p.csv').itertuples():
        assert Path(row.path).name in table and row.predicted in table, table
    assert 'bad.jpg: not an image' in table, table
    shot(page, app, 'app_several.png')
    with page.expect_download() as d: page.locator('#csv a').first.click()
    got = pd.read_csv(d.value.path(), keep_default_na=False)
    assert list(got.file) == [f.name for f in files] + ['bad.jpg'] and (got.error != '').tolist() == [False]*3 + [True]
    assert not {f.name for f in files} & set(uploaded_names(app))
    page.get_by_role('tab', name='One image').click()

def test_the_space_app_runs_as_it_is(app, tmp_path):
    "space/app.py, copied beside a model file, builds the app (a Space then launches it)"
    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo/'space/app.py', tmp_path/'app.py'); shutil.copy(app['model'], tmp_path/'model.pkl')
    r = subprocess.run([sys.executable, '-c', 'import app; print(type(app.demo).__name__)'], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip().endswith('Blocks'), r.stderr
