"scene_cls benchmarks: `python -m bench` (see bench/run.py; a module per kind of measurement)"
