"What a user reads says what the code does: the version and its changelog, the notebooks' install cell, the README's commands."
import json, re, shlex
from pathlib import Path
import pytest
from conftest import REPO

def test_the_changelog_has_this_version():
    import scene_cls
    heads = re.findall(r'^## (\S+)', (REPO/'CHANGELOG.md').read_text(), re.M)
    assert heads and heads[0] == scene_cls.__version__, heads   # the newest entry is the version the code says

def test_the_package_metadata_has_the_version():
    import importlib.metadata, scene_cls
    assert importlib.metadata.version('scene_cls') == scene_cls.__version__   # reinstall (pip install -e .) after a bump

def readme_commands(text:str) -> list:
    "The `scene-cls ...` command lines of the fenced code blocks of `text`, as argv lists (comments and `&&` chains cut)"
    res = []
    for block in re.findall(r'```(?:bash|sh)?\n(.*?)```', text, re.S):
        for line in block.splitlines():
            for part in line.split('#')[0].split('&&'):
                part = part.strip()
                if part.startswith('scene-cls '): res.append(shlex.split(part))
    return res

def test_every_command_the_readme_shows_parses():
    from scene_cls.cli import command_parser, COMMANDS
    cmds = readme_commands((REPO/'README.md').read_text())
    assert len(cmds) >= 10, cmds
    for argv in cmds:
        assert argv[1] in COMMANDS, argv
        try: command_parser(argv[1]).parse_args(argv[2:])
        except SystemExit: pytest.fail(f"README: {shlex.join(argv)} does not parse")

def test_the_main_job_is_the_command_that_was_measured():
    "The README's main job, word for word, is the `mainjob` row's argv, and the row's result is what the README shows"
    res = json.loads((REPO/'bench'/'results.json').read_text())
    row = next((r for r in res['rows'] if r['group'] == 'mainjob' and r.get('ours') is not None), None)
    assert row, 'bench/results.json has no measured mainjob row: python -m bench --only mainjob'
    readme = (REPO/'README.md').read_text()
    main = readme.split('## The main job', 1)[1].split('\n## ', 1)[0]
    assert readme_commands(main) == row['argv'], (readme_commands(main), row['argv'])
    assert all(len(r['argv']) == 2 for r in row['runs']) and len({r['seed'] for r in row['runs']}) >= 3, row['runs']   # three seeds
    assert f"{row['ours']:.1%}" in readme.split('## Results', 1)[1], 'the README shows the row\'s result'
