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


def test_via_trtexec_needs_no_tensorrt_package(fake, monkeypatch, tmp_path):
    """Fault 7: with tensorrt hidden (and a GPU reported by the driver), the trtexec runner of the trt device
    is available where a trtexec is found, while the default runner names the missing package; the engine
    is built and measured without importing tensorrt."""
    import sys

    from bench.env.gpu import GpuFacts
    from devices import registry

    exe, _ = fake
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails, find_spec says absent
    gpu_host = GpuFacts(nvml="ok", gpu_count=1, torch_version="2.13.0+cpu", torch_cuda=None, torch_gpus=0,
                        tensorrt=False)
    monkeypatch.setattr(tx, "gather_facts", lambda: gpu_host)
    monkeypatch.setenv("TRTEXEC", str(exe))
    assert registry.availability("trt", via="trtexec").status == "available"
    default = registry.availability("trt")
    assert default.status == "unavailable" and "tensorrt" in default.reason
    artifact, _ = trtexec_export(_request(exe), tmp_path / "cache")
    with tx.TrtexecRunner(RunnerOptions(threads=1, extra={"trtexec": str(exe)})) as r:
        r.load(artifact)
        assert len(measure(r, get_protocol("quick")).samples_ms) == 3
    assert sys.modules["tensorrt"] is None  # nothing imported it
    monkeypatch.delenv("TRTEXEC")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(tx.tool, "KNOWN_LOCATIONS", ())
    assert "trtexec not found" in registry.availability("trt", via="trtexec").reason


@pytest.mark.slow
def test_trtexec_11_builds_the_fp16_onnx_and_runs_without_deprecated_flags(fake, monkeypatch, tmp_path):
    """The stand-in answering with TensorRT 11.1's real help: fp16 is built from the parity-checked fp16 ONNX
    (11 has no --fp16), copies=true is --includeDataTransfers, and no deprecated no-op is sent (the stand-in
    warns for those, as trtexec 11 does)."""
    exe, argv_log = fake
    monkeypatch.setenv("FAKE_TRTEXEC_HELP", "trtexec_help_trt11_1.txt")
    artifact, _ = trtexec_export(_request(exe), tmp_path / "cache")
    meta = artifact.metadata
    assert meta["tensorrt"] == "11.1.0" and meta["build_path"] == "strongly-typed+fp16-onnx"
    assert meta["onnx_target"] == "onnx_fp16" and meta["onnx_parity"]["cosine"] >= 0.999
    build = _calls(argv_log)[1]
    assert "--fp16" not in build and any(a.startswith("--onnx=") and "/onnx_fp16/" in a for a in build)
    assert not meta["build"]["warnings"]
    with tx.TrtexecRunner(RunnerOptions(threads=1, extra={"trtexec": str(exe), "copies": True})) as r:
        r.load(artifact)
        m = measure(r, get_protocol("quick"))
        info = r.info()
    run = info["run_command"]
    assert "--includeDataTransfers" in run and "--noCudaGraph" in run
    assert not {"--noDataTransfers", "--useSpinWait", "--useCudaGraph"} & set(run)
    assert not [f for f in m.flags if "deprecated" in f]
