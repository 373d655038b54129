"""The trtexec runner (devices/trtexec.py) over a stand-in trtexec: rounds through the one loop, failures, and the
engine build as an exporter (exporters/trtexec.py) that the runner loads. The parsers and command lines of
bench/tools/trtexec.py: tests/bench/tools/test_trtexec.py."""
import json
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from bench.core.errors import UserError
from bench.core.protocol import get_protocol
from bench.core.artifact import ExportRequest
from bench.measure import measure
from devices import trtexec as tx
from exporters.trtexec import export as trtexec_export
from bench.core.runner import RunnerOptions


@pytest.fixture
def fake(fixtures, tmp_path, monkeypatch):
    """The stand-in trtexec, executable, with its argv log."""
    exe = tmp_path / "bin" / "trtexec"
    exe.parent.mkdir()
    shutil.copy(fixtures / "fake_trtexec.py", exe)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    # the copy must still find its fixtures: point it at them through a symlinked folder
    for f in fixtures.iterdir():
        if f.name != "fake_trtexec.py":
            (exe.parent / f.name).symlink_to(f)
    argv_log = tmp_path / "argv.jsonl"
    monkeypatch.setenv("FAKE_TRTEXEC_ARGV", str(argv_log))
    monkeypatch.delenv("FAKE_TRTEXEC_FAIL", raising=False)
    return exe, argv_log


def _calls(argv_log):
    return [json.loads(line) for line in argv_log.read_text().splitlines()]


def _request(exe, model="mobileone_mu0"):
    return ExportRequest(model, settings=(("trtexec", str(exe)),))


@pytest.fixture
def engine(fake, tmp_path):
    """An engine built by the stand-in trtexec from a real ONNX export, in a suite cache."""
    exe, argv_log = fake
    cache = tmp_path / "cache dir"
    artifact, hit = trtexec_export(_request(exe), cache)
    return exe, argv_log, cache, artifact, hit


def test_the_engine_build_is_an_exporter_keyed_and_cached(engine):
    exe, argv_log, cache, artifact, hit = engine
    assert not hit and artifact.target == "trtexec" and Path(artifact.path).is_file()
    assert Path(artifact.path).is_relative_to(cache / "trtexec")
    assert (Path(artifact.path).parent / "build.log").is_file()
    assert artifact.metadata["tensorrt"] == "10.9.0"
    assert artifact.metadata["build"]["precision_counts"]["compute"] == {"fp16": 4, "fp32": 1}
    calls = _calls(argv_log)
    assert calls[0][1:] == ["--help"] and "--fp16" in calls[1] and "--skipInference" in calls[1]
    # same ONNX, trtexec and GPU: the engine is reused, not rebuilt (only --help runs again)
    again, hit = trtexec_export(_request(exe), cache)
    assert hit and again.sha256 == artifact.sha256
    assert [c[1] for c in _calls(argv_log)[2:]] == ["--help"]


def test_runner_measures_rounds_through_the_one_loop(engine):
    exe, argv_log, cache, artifact, _ = engine
    n_before = len(_calls(argv_log))
    with tx.TrtexecRunner(RunnerOptions(threads=1, extra={"trtexec": str(exe)})) as r:
        r.load(artifact)
        m = measure(r, get_protocol("quick"))
        info = r.info()
        assert len(m.samples_ms) == 3 and m.stop_reason == "protocol complete"
        runs = _calls(argv_log)[n_before + 1:]
        assert len(runs) == 3 and all(c[1] == f"--loadEngine={artifact.path}" for c in runs)
        assert all(any(a.startswith("--exportTimes=") for a in c) for c in runs)
        assert info["run_command"][:6] == [str(exe), f"--loadEngine={artifact.path}", "--warmUp=200",
                                           "--iterations=3", "--duration=0.05", "--noDataTransfers"]
        assert info["device_reported"]["device"] == "NVIDIA H100 80GB HBM3"
        assert {"gpu", "gpu_before", "gpu_after"} <= set(info)

        m = measure(r, get_protocol("default"))  # identical rounds: the CI target is met at 5
        assert len(m.samples_ms) == 5 and m.stop_reason.startswith("precision reached")
        # The time cap counts measuring time (one warm-up plus the timed inferences), not process starts:
        # with an unreachable target it ends at the first round whose measured time reaches max_s.
        per_round_s = sum(m.samples_ms[0]) / 1000
        p = replace(get_protocol("default"), target_rel_ci=-1.0, max_rounds=9, max_s=1.0 + 6.5 * per_round_s)
        r2 = tx.TrtexecRunner(RunnerOptions(threads=1, extra={"trtexec": str(exe)}))
        with r2:
            r2.load(artifact)
            m = measure(r2, p)
        assert len(m.samples_ms) == 7 and m.stop_reason.startswith("time cap")
        with pytest.raises(RuntimeError, match="times its own rounds"):
            r.infer()


def test_runner_failures_are_reported_and_builds_leave_no_half_entry(fake, tmp_path, monkeypatch):
    exe, _ = fake
    cache = tmp_path / "cache"
    monkeypatch.setenv("FAKE_TRTEXEC_FAIL", "build")
    with pytest.raises(RuntimeError, match="engine build failed .*Failed to parse ONNX model"):
        trtexec_export(_request(exe), cache)
    assert sorted(p.name for p in (cache / "trtexec").iterdir()) == ["timing-caches"]  # no entry, no scratch
    monkeypatch.delenv("FAKE_TRTEXEC_FAIL")
    artifact, _ = trtexec_export(_request(exe), cache)
    monkeypatch.setenv("FAKE_TRTEXEC_FAIL", "run")
    with tx.TrtexecRunner(RunnerOptions(threads=1, extra={"trtexec": str(exe)})) as r:
        r.load(artifact)
        with pytest.raises(RuntimeError, match="round 1 failed .*Error opening engine file"):
            measure(r, get_protocol("quick"))


def test_runner_refuses_what_trtexec_did_not_build(tmp_path, fake):
    exe, _ = fake
    (tmp_path / "m.tflite").write_bytes(b"x")
    with pytest.raises(UserError, match="loads an engine built by trtexec"):
        tx.TrtexecRunner(RunnerOptions(threads=1, extra={"trtexec": str(exe)})).load(tmp_path / "m.tflite")
