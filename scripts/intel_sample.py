"""Rebuild, from the Kaggle dataset, the real Intel images this project measures on (the README's results).

Every image is one of the dataset's training split (`seg_train/seg_train/<class>/<name>.jpg`), listed by name and
MD5 in `data/intel-images.csv`:

- `data/intel-sample/{train,valid}/<class>/`: 150 + 50 images a class, the README's main job trains on them;
- `data/intel-extra/<class>/`: 200 more a class (1,200), the evaluation set of every accuracy claim;
- `data/intel-unlabelled/`: 3,000 more, as a flat folder without labels (like `seg_pred`), for self-training.

    python scripts/intel_sample.py                  # download the dataset with kagglehub (public: no login), then copy
    python scripts/intel_sample.py --from DIR       # a dataset root you have (the folder holding seg_train/)
    python scripts/intel_sample.py --to OTHER_DIR   # somewhere else than data/

Files are copied (hard-linked where the file system allows), each checked against its MD5; the dataset is not
touched. Run again, it checks what is there and copies what is missing.
"""
from __future__ import annotations
import argparse, csv, hashlib, os, shutil, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIST = REPO/'data'/'intel-images.csv'
FOLDERS = {'sample-train': 'intel-sample/train', 'sample-valid': 'intel-sample/valid', 'extra': 'intel-extra', 'unlabelled': 'intel-unlabelled'}

def md5(f:Path) -> str: return hashlib.md5(f.read_bytes()).hexdigest()

def train_split(root:Path) -> Path:
    "The training split's folder of classes under a dataset root (Kaggle's nested `seg_train/seg_train`, or `seg_train`, `train`)"
    for p in (root/'seg_train'/'seg_train', root/'seg_train', root/'train'):
        if p.is_dir(): return p
    sys.exit(f"{root}: no seg_train/seg_train (or seg_train, train) folder: is this the Intel Image Classification dataset?")

def rebuild(src:Path, # the dataset root (the folder holding seg_train/)
            dest:Path, # where intel-sample/, intel-extra/ and intel-unlabelled/ go
            listing:Path=LIST, # the list of the images: set, class, file, md5
           ) -> dict:
    "Copy every listed image from the dataset at `src` into `dest`, checked by MD5; how many were copied, already there, missing"
    train, rows = train_split(Path(src)), list(csv.DictReader(open(listing)))
    by_name = {}
    for f in train.glob('*/*'): by_name.setdefault(f.name, []).append(f)
    res = dict(copied=0, present=0, missing=[])
    for r in rows:
        out = Path(dest)/FOLDERS[r['set']]/r['class']/r['file']
        if out.is_file() and md5(out) == r['md5']: res['present'] += 1; continue
        cands = [f for f in ([train/r['class']/r['file']] if r['class'] else by_name.get(r['file'], [])) if f.is_file()]
        hit = next((f for f in cands if md5(f) == r['md5']), None)
        if hit is None: res['missing'].append(f"{r['set']}/{r['class']}/{r['file']}"); continue
        out.parent.mkdir(parents=True, exist_ok=True); out.unlink(missing_ok=True)
        try: os.link(hit, out)
        except OSError: shutil.copyfile(hit, out)
        res['copied'] += 1
    return res

def main(argv=None):
    p = argparse.ArgumentParser(prog='python scripts/intel_sample.py', description=__doc__.split('\n\n')[0])
    p.add_argument('--from', dest='src', help='the dataset root (default: download it with kagglehub, or where find_scene_data finds it)')
    p.add_argument('--to', dest='dest', default=str(REPO/'data'), help='where the folders go (default: data/)')
    a = p.parse_args(argv)
    if a.src is None:
        from scene_cls.platform import find_scene_data
        a.src = find_scene_data()
        print(f"The dataset: {a.src}")
    res = rebuild(Path(a.src), Path(a.dest))
    print(f"{res['copied']} images copied, {res['present']} already there, {len(res['missing'])} missing, into {a.dest}: "
          + ', '.join(f'{Path(a.dest)/v}' for v in ('intel-sample', 'intel-extra', 'intel-unlabelled')))
    if res['missing']: sys.exit(f"not in the dataset at {a.src} (or not the same bytes): {', '.join(res['missing'][:5])}"
                                + (f" and {len(res['missing']) - 5} more" if len(res['missing']) > 5 else ''))

if __name__ == '__main__': main()
