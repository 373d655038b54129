"""Runs that cannot lose data: a live run's file is locked (a second writer is refused, naming the holder),
and a run file that becomes unwritable mid-run moves to a rescue file, named in one line, exit 4."""
import json
import os
import subprocess
import sys

import pytest

from bench.cli import main
from bench.core.io import now_iso
from bench.store import Run, RunLocked, RunWriter, load_run


def _run(run_id="20260101-000000-aaaa"):
    return Run(run_id=run_id, created=now_iso(), command=["test"], config={}, env={})


def test_a_second_writer_of_a_live_run_is_refused(tmp_path):
    path = tmp_path / "r.json"
    first = RunWriter(path, _run())
    # another process holding the lock: flock is per open file, so a child process takes it for real
    code = ("import sys; from pathlib import Path; from bench.store import Run, RunWriter, RunLocked\n"
            "from bench.core.io import now_iso\n"
            "try:\n    RunWriter(Path(sys.argv[1]), Run('x', now_iso(), [], {}, {}))\n"
            "except RunLocked as e:\n    print(e); sys.exit(7)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    assert proc.returncode == 7, proc.stderr
    assert f"is being written by process {os.getpid()}" in proc.stdout
    first.finish()
    assert not first.lock_path.exists()
    second = RunWriter(path, load_run(path))  # a finished run can be taken up again
    second.finish()


def test_resume_of_a_live_run_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "runs"
    run = _run()
    writer = RunWriter(out / f"{run.run_id}.json", run)
    try:
        rc = main(["run", "--resume", run.run_id, "--out", str(out)])
    finally:
        writer.finish("interrupted")
    err = capsys.readouterr().err
    assert rc == 2 and "is being written by process" in err and len(err.strip().splitlines()) == 1


def test_an_unwritable_run_file_moves_to_a_rescue_file(tmp_path, monkeypatch, capsys):
    """The results folder turns unwritable after the first cell: the second cell is kept, in a rescue file
    under the cache, and the run says so in one line with exit 4 (not the gate's FAIL code 1)."""
    import bench.store as store

    real_write = store.atomic_write_text
    calls = {"n": 0}
    out = tmp_path / "runs"

    def flaky(path, text):
        if path.parent == out:
            calls["n"] += 1
            if calls["n"] > 2:  # the initial write and the first cell succeed; then the folder "goes away"
                raise PermissionError(13, "Permission denied", str(path))
        real_write(path, text)

    monkeypatch.setattr(store, "atomic_write_text", flaky)
    monkeypatch.setattr(RunWriter, "RETRY_WAIT_S", 0.0)
    cache = tmp_path / "cache"
    rc = main(["run", "--device", "cpu", "--models", "mobileone_mu0,mobileone_mu1", "--protocol", "quick",
               "--threads", "1", "--out", str(out), "--cache-dir", str(cache)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 4 and "Permission denied" in err[-1] and "every measured cell is saved in" in err[-1]
    rescued = list((cache / "rescued-runs").glob("*.rescued.json"))
    assert len(rescued) == 1
    data = json.loads(rescued[0].read_text())
    assert data["status"] == "complete" and len(data["cells"]) == 2
    assert all(c["status"] == "ok" for c in data["cells"])
