"""What the tests and the benchmarks both use to run things: a program of another environment, the light install,
a web server on a free port, and the web demo under load. Not part of the package; the tests import it from the
repository root (pytest's `pythonpath`), the benchmarks too."""
from __future__ import annotations
import os, random, shutil, socket, statistics, subprocess, sys, tempfile, threading, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def run_env(bin_dir:Path, *args, timeout=600, **kw) -> subprocess.CompletedProcess:
    "Run the program `args[0]` of the environment `bin_dir` with `args[1:]`, in that environment alone (no PYTHONPATH)"
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV', 'PYTHONHOME')}
    env.update(MPLBACKEND='Agg', PYTHONUNBUFFERED='1', **kw.pop('env', {}))
    return subprocess.run([str(bin_dir/args[0])] + [str(a) for a in args[1:]], capture_output=True, text=True, env=env, timeout=timeout, **kw)

def light_env(folder:Path, app:bool=False) -> Path:
    "A fresh virtual environment with the light install of the README (and gradio when `app`): its bin folder"
    b = folder/'bin'
    if not (b/'scene-cls').exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([sys.executable, '-m', 'venv', folder], check=True)
        for args in (['-r', REPO/'requirements-runtime.txt'], ['--no-deps', REPO]):
            r = run_env(b, 'python', '-m', 'pip', 'install', '-q', '--disable-pip-version-check', *args, timeout=1200)
            if r.returncode: raise RuntimeError(f"pip install {args} failed: {r.stderr[-2000:]}")
    if app and run_env(b, 'python', '-c', 'import gradio').returncode:
        r = run_env(b, 'python', '-m', 'pip', 'install', '-q', '--disable-pip-version-check', 'gradio>=6.16',
                    timeout=1200)
        if r.returncode: raise RuntimeError(f"pip install gradio failed: {r.stderr[-2000:]}")
    return b

def best_time(n:int, f) -> float:
    ts = []
    for _ in range(n): t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return round(min(ts), 3)

def free_port() -> int:
    with socket.socket() as so: so.bind(('127.0.0.1', 0)); return so.getsockname()[1]

def start_server(args:list, # the command that serves; `--port PORT` is added
                 log:Path, # its output goes to this file
                 env:dict=None, # its environment; default this process's
                 timeout:float=180, # seconds to wait for it to answer
                 **kw, # more `subprocess.Popen` settings (cwd, ...)
                ) -> tuple:
    "Start a web server on a free port of 127.0.0.1 and wait until it accepts connections: (process, url, seconds it took)"
    port, t0 = free_port(), time.time()
    with open(log, 'w') as out: proc = subprocess.Popen([str(a) for a in args] + ['--port', str(port)], stdout=out, stderr=subprocess.STDOUT, env=env, **kw)
    while True:
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=1): return proc, f'http://127.0.0.1:{port}/', time.time() - t0
        except OSError:
            if proc.poll() is not None or time.time() - t0 > timeout:
                proc.kill(); raise RuntimeError(f"the server did not start (exit code {proc.poll()}): {Path(log).read_text()[-2000:]}")
            time.sleep(0.5)

def _rss_mb(pid:int) -> float:
    try: return int(next(l for l in open(f'/proc/{pid}/status') if l.startswith('VmRSS')).split()[1])/1024
    except (OSError, StopIteration): return float('nan')

def serve_load(model:Path, # model.pkl or .onnx
               good:dict, # image file -> the class the model gives it (from `predict_rows`)
               bad:list, # files that are not images
               seconds:float=60, # how long the clients upload
               clients:int=8, # threads, each its own gradio_client
               max_file_size:str='1mb', # the server's upload limit; a file above it is sent once at the end
               bin_dir:Path=BIN, # the environment whose scene-cls serves
               work:Path=None, # scratch folder (Gradio's upload folder inside)
               upload_age:float=10, # the server's --upload-age (its default): a request queued longer than this can find its upload gone
              ) -> dict:
    "Start `scene-cls serve MODEL` on 127.0.0.1; `clients` upload `good` and `bad` files in turn for `seconds`; what came back"
    from gradio_client import Client, handle_file
    work = Path(work or Path(tempfile.mkdtemp(prefix='scene_cls_serve_'))); shutil.rmtree(work, ignore_errors=True); (work/'gradio').mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH',)}
    env.update(GRADIO_TEMP_DIR=str(work/'gradio'), MPLBACKEND='Agg', PYTHONUNBUFFERED='1', GRADIO_ANALYTICS_ENABLED='False')
    proc, url, start_s = start_server([bin_dir/'scene-cls', 'serve', model, '--no-gradcam', '--max-file-size', max_file_size, '--upload-age', str(upload_age)],
                                      work/'server.log', env, cwd=work)
    try:
        Client(url, verbose=False).predict(handle_file(str(next(iter(good)))), api_name='/classify')   # warm-up
        rss, stop, res, wrong, lock = [], threading.Event(), [], [], threading.Lock()
        def sample():
            while not stop.is_set(): rss.append((time.time(), _rss_mb(proc.pid))); time.sleep(0.5)
        items = [(f, c) for f, c in good.items()] + [(f, None) for f in bad]
        def client(i):
            c, rng = Client(url, verbose=False), random.Random(i)
            while not stop.is_set():
                f, want = rng.choice(items); t = time.perf_counter()
                try:
                    out = c.predict(handle_file(str(f)), api_name='/classify'); err = ''
                    label = (out[0] or {}).get('label') if isinstance(out[0], dict) else None
                    ok = (label == want) if want else ('Cannot classify this file' in (out[2] or '') and label is None)
                except Exception as e: ok, err, out = False, f'{type(e).__name__}: {e}', None
                with lock:
                    res.append((time.perf_counter() - t, ok, err, want is None))
                    if not ok and not err: wrong.append(dict(file=Path(f).name, want=want, got=repr(out)[:300]))
        threads = [threading.Thread(target=sample)] + [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        t1 = time.time()
        for t in threads: t.start()
        time.sleep(seconds); stop.set()
        for t in threads: t.join()
        wall = time.time() - t1
        big = work/'big.jpg'; big.write_bytes(b'\xff\xd8' + os.urandom(2*2**20))   # 2 MB, above a 1 MB limit
        import httpx   # the HTTP upload itself (gradio_client refuses a large file before sending it)
        with open(big, 'rb') as fh: r = httpx.post(url + 'gradio_api/upload', files={'files': ('big.jpg', fh, 'image/jpeg')}, timeout=60)
        refused = f'HTTP {r.status_code}: {r.text[:120]}'
        time.sleep(upload_age + 2)   # answered uploads and Gradio's empty temporaries go after --upload-age
        sent = {Path(f).name for f in list(good) + list(bad)} | {'big.jpg'}
        left = [str(p.relative_to(work/'gradio')) for p in (work/'gradio').rglob('*')   # uploads and Gradio's temporaries (its copies of the examples stay)
                if p.is_file() and (p.name in sent or p.name.startswith('tmp'))]
    finally:
        proc.terminate()
        try: proc.wait(30)
        except subprocess.TimeoutExpired: proc.kill()
    lat = sorted(r[0] for r in res)
    q = lambda p: round(lat[min(len(lat) - 1, int(p*len(lat)))], 3) if lat else None
    n_head = max(1, len(rss)//6)
    text = (work/'server.log').read_text()
    return dict(requests=len(res), wrong=sum(not r[1] and not r[2] for r in res), wrong_examples=wrong[:3], errors=[r[2] for r in res if r[2]][:5], n_errors=sum(bool(r[2]) for r in res),
                bad_files=sum(r[3] for r in res), rps=round(len(res)/wall, 2), p50=q(0.5), p95=q(0.95), p99=q(0.99),
                rss_start_mb=round(statistics.median(v for _, v in rss[:n_head]), 1) if rss else None,
                rss_end_mb=round(statistics.median(v for _, v in rss[-n_head:]), 1) if rss else None,
                left_on_disk=left[:10], n_left=len(left), oversize=refused, start_s=round(start_s, 1),
                log_lines=len(text.splitlines()), log_tail=text[-600:])

class SlowFiles:
    "A web server on 127.0.0.1 serving the files of `folder` slowly (`chunk` bytes every `pause` seconds), counting each GET; a context manager"
    def __init__(self, folder:Path, chunk:int=256*1024, pause:float=0.1):
        import http.server
        self.folder, self.gets, self.lock = Path(folder), [], threading.Lock()
        outer = self
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_GET(self):
                f = outer.folder/self.path.lstrip('/')
                with outer.lock: outer.gets.append(self.path)
                if not f.is_file(): self.send_error(404); return
                data = f.read_bytes()
                self.send_response(200); self.send_header('Content-Length', str(len(data))); self.end_headers()
                for i in range(0, len(data), chunk): self.wfile.write(data[i:i + chunk]); self.wfile.flush(); time.sleep(pause)
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = f'http://127.0.0.1:{self.server.server_port}/'
    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self
    def __exit__(self, *exc): self.server.shutdown(); self.server.server_close()

def near_tie(top3:str, eps:float=1e-4) -> bool:
    "Whether the top two probabilities of a `top3` cell (`class:p class:p ...`) are within `eps`: another runtime may rank them the other way"
    ps = [float(t.rsplit(':', 1)[1]) for t in str(top3).split()[:2]]
    return len(ps) == 2 and abs(ps[0] - ps[1]) < eps

def same_predictions(a, b) -> bool:
    "Two prediction tables (`predict_csv`'s rows) of one model through two runtimes: the same class in every row, but at a near-tie of `a`"
    return all(pa == pb or near_tie(t) for pa, pb, t in zip(a.predicted, b.predicted, a.top3))

def call_api(url:str, # the app's address
             api_name:str, # the endpoint, e.g. 'classify'
             data:list, # its inputs, as JSON (a file: {'path': ..., 'meta': {'_type': 'gradio.FileData'}})
             timeout:float=60, # seconds to wait for the answer
             **kw, # more `httpx` settings (auth, ...)
            ) -> tuple:
    "Call a Gradio endpoint through its queue's `/call` route with `data` as it is: (event, data), event complete|error"
    import httpx, json
    r = httpx.post(f"{url}gradio_api/call/{api_name}", json={'data': data}, timeout=timeout, **kw)
    if r.status_code != 200: return f'HTTP {r.status_code}', r.text
    event = None
    with httpx.stream('GET', f"{url}gradio_api/call/{api_name}/{r.json()['event_id']}", timeout=timeout, **kw) as s:
        for line in s.iter_lines():
            if line.startswith('event:'): event = line.split(':', 1)[1].strip()
            elif line.startswith('data:') and event in ('complete', 'error'):
                d = line.split(':', 1)[1].strip()
                try: return event, json.loads(d)
                except ValueError: return event, d
    return event, None
