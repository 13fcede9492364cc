"""The launcher / run cache (mmrm.experiments: keys, records, run, launcher) with cheap fake runs: a run is its key, results
are written atomically with their record, attempts keep their own logs and add up their time,
and the same runs go through submitit's local executor and, with stub sbatch / srun / sacct /
squeue / scancel on PATH, through its Slurm executor."""
import functools
import json
import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mmrm.experiments import (KEY_FIELDS, Launcher, Run, RunKey, git_commit,
                              library_versions, read_json, write_json_atomic)

pytest.importorskip('submitit')


def count_body(ctx, value=1, fail_first=False, sleep=0.):
    """A fake run: appends a line to ``calls`` beside its folder, runs a trivial tool, may fail
    its first attempt after ``sleep`` seconds."""
    with open(Path(ctx.folder).parent / 'calls', 'a') as f:
        f.write(f'{ctx.folder} {ctx.attempt}\n')
    ctx.call([sys.executable, '-c', f'import os; print("attempt {ctx.attempt} eta: 0:00:01 '
              'threads", os.environ.get("OMP_NUM_THREADS"))'])
    time.sleep(sleep)
    if fail_first and ctx.attempt == 1:
        raise RuntimeError('first attempt breaks')
    threads = Path(ctx.log).read_text().splitlines()[-1].split()[-1]  # what the tool saw
    return dict(value=value, threads=threads)


KEY = RunKey(config='c' * 64, cfg_options=['a=1'], data=dict(canvas=dict(size=64)),
             checkpoints=dict(backbone='b' * 64), seed=0)


def make_run(root, key=KEY, **kw):
    return Run('fake seed 0', str(root), 'fake_seed0', key, functools.partial(count_body, **kw),
               threads=1)


def calls(root):
    path = Path(root) / 'calls'
    return path.read_text().splitlines() if path.exists() else []


def test_a_finished_run_is_reused_only_with_its_own_key(tmp_path):
    lines = []
    launcher = Launcher('inline', log=lines.append)
    first = launcher.run([make_run(tmp_path)])[0]
    assert first['result']['value'] == 1 and len(calls(tmp_path)) == 1
    assert launcher.run([make_run(tmp_path)])[0] == first and len(calls(tmp_path)) == 1
    assert any('done before' in x for x in lines)
    changed = dict(config='d' * 64, cfg_options=['a=2'], data=dict(canvas=dict(size=32)),
                   checkpoints=dict(backbone='e' * 64), seed=1)
    assert set(changed) == set(KEY_FIELDS)
    folders = {make_run(tmp_path).folder}
    for name, value in changed.items():
        key = RunKey(**{**KEY.to_dict(), name: value})
        assert KEY.differs(key.to_dict()) == [name]
        lines.clear()
        run = make_run(tmp_path, key=key)
        record = launcher.run([run])[0]
        # run again, into a folder of its own, the other key's run named with the difference
        assert calls(tmp_path)[-1].split()[0] == run.folder and run.folder not in folders
        assert record['key'][name] == value
        assert any(f'differs in {name})' in x for x in lines if make_run(tmp_path).folder in x)
        folders.add(run.folder)
    assert len(calls(tmp_path)) == 1 + len(changed)
    # a record of another key in this key's folder (copied in by hand) is refused, by field
    record = read_json(make_run(tmp_path).result_path)
    record['key']['seed'] = 5
    write_json_atomic(make_run(tmp_path).result_path, record)
    with pytest.raises(RuntimeError, match=r'another key \(differs in seed\)'):
        launcher.run([make_run(tmp_path)])


def test_a_truncated_result_runs_again_with_a_message(tmp_path):
    lines = []
    run = make_run(tmp_path)
    Launcher('inline', log=lines.append).run([run])
    text = Path(run.result_path).read_text()
    Path(run.result_path).write_text(text[:len(text) // 2])  # what a killed plain write leaves
    record = Launcher('inline', log=lines.append).run([run])[0]
    assert record['result']['value'] == 1 and len(calls(tmp_path)) == 2
    assert any('is truncated or corrupt; running it again' in x for x in lines)
    assert json.loads(Path(run.result_path).read_text()) == record
    assert not list(Path(run.folder).glob('*.tmp*'))  # the atomic write left no tmp file


def test_attempts_keep_their_logs_and_add_up_their_wall_time(tmp_path):
    run = make_run(tmp_path, fail_first=True, sleep=0.3)
    with pytest.raises(RuntimeError, match='first attempt breaks'):
        Launcher('inline', log=lambda *_: None).run([run])
    assert not Path(run.result_path).exists()
    record = Launcher('inline', log=lambda *_: None).run([run])[0]
    attempts = record['attempts']
    assert [(a['attempt'], a['status']) for a in attempts] == [(1, 'failed'), (2, 'finished')]
    assert all(a['seconds'] >= 0.3 for a in attempts)
    assert record['wall_s'] == pytest.approx(sum(a['seconds'] for a in attempts), abs=0.11)
    for n in (1, 2):
        log = (Path(run.folder) / f'attempt-{n}.log').read_text()
        assert f'attempt {n} eta:' in log and f'attempt {3 - n} eta:' not in log


def test_a_killed_attempt_counts_until_its_last_log_line(tmp_path):
    run = make_run(tmp_path)
    Path(run.folder).mkdir(parents=True)
    log = Path(run.attempt_log(1))
    log.write_text('killed\n')
    os.utime(log, (time.time(), time.time()))
    write_json_atomic(str(Path(run.folder) / 'attempts.json'), [
        dict(attempt=1, host='h', start=round(time.time() - 50, 1), seconds=None,
             status='running')])
    record = Launcher('inline', log=lambda *_: None).run([run])[0]
    assert [a['attempt'] for a in record['attempts']] == [1, 2]
    assert 49 <= record['wall_s'] <= 60


def test_the_record_says_what_made_the_result(tmp_path):
    record = Launcher('inline', log=lambda *_: None).run([make_run(tmp_path)])[0]
    assert record['key'] == KEY.to_dict() and record['digest'] == KEY.digest
    assert record['result'] == dict(value=1, threads='1')  # the run's threads reach its tools
    assert record['commit'] == git_commit() and record['commit']
    versions = record['versions']
    assert set(versions) >= {'torch', 'mmcv', 'mmdet', 'mmseg', 'mmpretrain', 'mmengine'}
    assert versions == library_versions() and versions['torch']
    assert record['threads'] == 1 and record['cpu'] and record['wall_s'] >= 0
    assert Path(make_run(tmp_path).folder).name == f'fake_seed0-{KEY.short}'


def test_the_local_launcher_runs_jobs_in_their_own_processes(tmp_path):
    lines = []
    runs = [make_run(tmp_path, key=RunKey(config=None, seed=s), value=s) for s in range(3)]
    for s, run in enumerate(runs):
        run.name, run.stem = f'fake seed {s}', f'fake_seed{s}'
    launcher = Launcher('local', folder=str(tmp_path / 'jobs'), jobs=2, log=lines.append,
                        poll_s=0.2)
    records = launcher.run(runs, describe=lambda r: f'value {r["result"]["value"]}')
    assert [r['result']['value'] for r in records] == [0, 1, 2]
    assert {c.split()[0] for c in calls(tmp_path)} == {r.folder for r in runs}
    assert any(x.startswith('[3/3] ') and 'ETA 0:00:00' in x for x in lines)
    # the tools' progress lines come back from the job's attempt log
    assert any(x.startswith('  [fake seed 1] attempt 1 eta:') for x in lines), lines
    assert Launcher('local', folder=str(tmp_path / 'jobs'), log=lambda *_: None).run(
        runs) == records and len(calls(tmp_path)) == 3


def fail_body(ctx):
    ctx.call([sys.executable, '-c', 'import sys; print("broken config"); sys.exit(3)'])


def test_a_failed_job_names_the_run_and_shows_its_log(tmp_path):
    run = Run('bad seed 0', str(tmp_path), 'bad_seed0', KEY, fail_body)
    launcher = Launcher('local', folder=str(tmp_path / 'jobs'), log=lambda *_: None, poll_s=0.2)
    with pytest.raises(RuntimeError, match=r'(?s)bad seed 0 failed \(local job .*broken config'):
        launcher.run([run])


STUBS = dict(
    sbatch='''
        import os, re, subprocess, sys
        log = os.environ['STUB_LOG']
        with open(log, 'a') as f:
            f.write('sbatch ' + ' '.join(sys.argv[1:]) + '\\n')
        n = sum(1 for line in open(log) if line.startswith('sbatch')) + 100
        script = sys.argv[-1]
        folder = re.search(r'--output=(\\S+)/%j', open(script).read()).group(1)
        env = dict(os.environ, SLURM_JOB_ID=str(n), SLURM_NTASKS='1', SLURM_JOB_NUM_NODES='1',
                   SLURM_NODEID='0', SLURM_PROCID='0', SLURM_LOCALID='0',
                   SLURM_JOB_NODELIST='node1')
        # the job starts once submitit moved its pickle to the job id, as on a cluster
        runner = (f'import os, subprocess, time\\n'
                  f'while not os.path.exists({folder!r} + "/{n}_submitted.pkl"):\\n'
                  f'    time.sleep(.05)\\n'
                  f'code = subprocess.call(["bash", {script!r}])\\n'
                  f'state = "COMPLETED" if code == 0 else "FAILED"\\n'
                  f'open({log!r} + ".state-{n}", "w").write(state)')
        subprocess.Popen([sys.executable, '-c', runner], env=env, start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f'Submitted batch job {n}')
    ''',
    srun='''
        import os, subprocess, sys
        args = sys.argv[1:]
        with open(os.environ['STUB_LOG'], 'a') as f:
            f.write('srun ' + ' '.join(args) + '\\n')
        files = {}
        while args[0].startswith('--'):
            flag = args.pop(0)
            if flag in ('--output', '--error'):
                files[flag] = args.pop(0).replace('%j', os.environ['SLURM_JOB_ID']).replace(
                    '%t', '0')
        with open(files['--output'], 'a') as out, open(files['--error'], 'a') as err:
            sys.exit(subprocess.call(args, stdout=out, stderr=err))
    ''',
    sacct='''
        import os, sys
        with open(os.environ['STUB_LOG'], 'a') as f:
            f.write('sacct ' + ' '.join(sys.argv[1:]) + '\\n')
        ids = [a for p, a in zip(sys.argv, sys.argv[1:]) if p == '-j']
        print('JobID|State|NodeList')
        for i in ids:
            state = os.environ['STUB_LOG'] + '.state-' + i
            print(f'{i}|{open(state).read() if os.path.exists(state) else "RUNNING"}|node1')
    ''',
    squeue='''
        import os, sys
        with open(os.environ['STUB_LOG'], 'a') as f:
            f.write('squeue ' + ' '.join(sys.argv[1:]) + '\\n')
    ''',
    scancel='''
        import os, sys
        with open(os.environ['STUB_LOG'], 'a') as f:
            f.write('scancel ' + ' '.join(sys.argv[1:]) + '\\n')
    ''')


@pytest.fixture
def slurm_stubs(tmp_path, monkeypatch):
    """sbatch / srun / sacct / squeue / scancel stand-ins on PATH: sbatch answers "Submitted
    batch job N" and runs the script as a one-task job, sacct tells its state; every call is
    recorded."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    for name, code in STUBS.items():
        path = bin_dir / name
        path.write_text(f'#!{sys.executable}\n' + textwrap.dedent(code))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / 'slurm-calls.log'
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    monkeypatch.setenv('STUB_LOG', str(log))
    return log


def test_the_slurm_launcher_submits_sbatch_jobs_and_collects_their_results(tmp_path,
                                                                          slurm_stubs):
    runs = [make_run(tmp_path / 'work', key=RunKey(config=None, seed=s), value=10 + s)
            for s in range(2)]
    for s, run in enumerate(runs):
        run.name, run.stem, run.threads = f'fake seed {s}', f'fake_seed{s}', 3
    lines = []
    launcher = Launcher('slurm', folder=str(tmp_path / 'jobs'), jobs=2, log=lines.append,
                        poll_s=0.2, slurm=dict(partition='gpu', time=90, cpus_per_task=3,
                                               gpus_per_node=1, nodes=1, ntasks_per_node=1,
                                               additional_parameters=dict(qos='high')))
    records = launcher.run(runs)
    assert [r['result'] for r in records] == [dict(value=10, threads='3'),
                                               dict(value=11, threads='3')]
    calls_made = slurm_stubs.read_text().splitlines()
    sbatch = [c.split()[-1] for c in calls_made if c.startswith('sbatch')]
    assert len(sbatch) == 2
    scripts = [Path(p).read_text() for p in sbatch]
    for s, script in enumerate(scripts):
        for line in ('#SBATCH --partition=gpu', '#SBATCH --time=90', '#SBATCH --cpus-per-task=3',
                     '#SBATCH --gpus-per-node=1', '#SBATCH --nodes=1', '#SBATCH --qos=high',
                     f'#SBATCH --job-name=fake_seed{s}'):
            assert line in script, (line, script)
        assert '-m submitit.core._submit' in script and 'srun --unbuffered' in script
    assert sum(c.startswith('srun ') for c in calls_made) == 2
    assert any(x.startswith('[2/2] fake seed') for x in lines)
    # the records are where the cache finds them: nothing is submitted again
    assert Launcher('slurm', folder=str(tmp_path / 'jobs'), log=lambda *_: None).run(
        runs) == records
    assert sum(c.startswith('sbatch') for c in slurm_stubs.read_text().splitlines()) == 2


def test_a_published_record_of_the_same_key_is_the_finished_run(tmp_path):
    """A new machine's run cache is empty: the committed copy of a record (``published``) made
    with the run's key is reused; one made with another key, or a corrupt one, is refused
    rather than overwritten; ``on_record`` sees each run as it finishes."""
    seen = []
    launcher = Launcher('inline', log=lambda line: None)
    record = launcher.run([make_run(tmp_path / 'a')],
                          on_record=lambda run, rec: seen.append((run.stem, rec)))[0]
    assert [s for s, _ in seen] == ['fake_seed0'] and seen[0][1] == record
    published = tmp_path / 'published.json'
    write_json_atomic(str(published), record)
    run = make_run(tmp_path / 'b')
    run.published = str(published)
    assert launcher.run([run], on_record=lambda *a: seen.append(a))[0] == record
    assert calls(tmp_path / 'b') == [] and len(seen) == 1  # nothing trained, nothing new
    other = dict(record, key=dict(record['key'], seed=7))
    write_json_atomic(str(published), other)
    with pytest.raises(RuntimeError, match=r'published record .* another key \(differs in seed'):
        launcher.run([run])
    published.write_text('{"key": ')
    with pytest.raises(RuntimeError, match='published record .* truncated or corrupt'):
        launcher.run([run])
    assert calls(tmp_path / 'b') == []


def test_options_in_another_order_or_repeated_are_the_same_key():
    a = RunKey('c' * 64, ['x.a=1', 'x.b = 2'], seed=0)
    b = RunKey('c' * 64, ['x.b=2', 'x.a=0', 'x.a=1'], seed=0)  # the last value of a key wins
    assert a.digest == b.digest and a.differs(b.to_dict()) == []
    assert RunKey('c' * 64, ['x.a=2', 'x.b=2'], seed=0).digest != a.digest
    # a record keeps the options as given; the comparison is in canonical form
    assert b.to_dict()['cfg_options'] == ['x.b=2', 'x.a=0', 'x.a=1']


def test_a_second_process_on_a_running_key_waits_and_takes_its_record(tmp_path):
    """Two launchers started on one key at once (here: two threads, each with its own lock
    file handle, as two processes would be): the key trains once, the second waits for the
    first and returns its record."""
    import threading
    lines = []
    first = make_run(tmp_path, sleep=1.5)
    second = make_run(tmp_path)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault('first', Launcher(
        'inline', log=lambda x: None).run([first])[0]))
    t.start()
    time.sleep(0.5)  # the first holds the lock
    out['second'] = Launcher('inline', log=lines.append).run([second])[0]
    t.join()
    assert len(calls(tmp_path)) == 1
    assert out['second'] == out['first']
    assert any('is running this key; waiting' in x and 'pid' in x for x in lines)


def test_a_config_digest_is_resolved_once_until_a_file_of_its_tree_changes(tmp_path,
                                                                           monkeypatch):
    """Inside a ``configs`` folder the resolved digest is remembered while no ``.py`` file there
    changes, by content (a same-size edit in the same clock tick still counts); elsewhere
    every call resolves the config."""
    from mmengine.config import Config

    from mmrm.experiments import config_digest
    base = tmp_path / 'configs' / '_base_' / 'model.py'
    base.parent.mkdir(parents=True)
    base.write_text('depth = 18\n')
    cfg = tmp_path / 'configs' / 'rm' / 'net.py'
    cfg.parent.mkdir()
    cfg.write_text("_base_ = ['../_base_/model.py']\nwidth = 16\n")
    loads = []
    real = Config.fromfile
    monkeypatch.setattr(Config, 'fromfile', lambda *a, **k: loads.append(a) or real(*a, **k))
    first = config_digest(str(cfg))
    assert config_digest(str(cfg)) == first and len(loads) == 1
    base.write_text('depth = 50\n')  # same size, at once: only the content tells
    second = config_digest(str(cfg))
    assert second != first and len(loads) == 2
    (tmp_path / 'configs' / 'rm' / 'other.py').write_text('x = 1\n')  # any file of the tree
    assert config_digest(str(cfg)) == second and len(loads) == 3
    loose = tmp_path / 'loose.py'
    loose.write_text('width = 16\n')
    assert config_digest(str(loose)) == config_digest(str(loose)) and len(loads) == 5
