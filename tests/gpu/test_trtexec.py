"""trtexec: help -> flags, the command lines, the --exportTimes and text parsers on fixtures in trtexec's
documented formats (bench/tools/trtexec.py); the engine build as an exporter (exporters/trtexec.py) and the
runner's rounds through the one loop (devices/trtexec.py), over a stand-in trtexec."""
import json
import math
import shutil
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bench.core.errors import MissingBackendError, UserError
from bench.core.protocol import get_protocol
from bench.stats import summarize
from bench.core.artifact import ExportRequest
from bench.core.runner import TimedRound
from bench.measure import measure
from bench.tools import trtexec as tool
from devices import trtexec as tx
from exporters.trtexec import export as trtexec_export
from bench.core.runner import RunnerOptions


@pytest.fixture
def help10(fixtures):
    return tool.parse_help((fixtures / "trtexec_help_trt10.txt").read_text())


@pytest.fixture
def help_synthetic(fixtures):
    return tool.parse_help((fixtures / "trtexec_help_synthetic_strongly_typed.txt").read_text())


@pytest.fixture
def times10(fixtures):
    return tool.parse_times((fixtures / "trtexec_times_trt10.json").read_text())


@pytest.fixture
def log10(fixtures):
    return tool.parse_log((fixtures / "trtexec_run_trt10.log").read_text())


# ------------------------------------------------------------------------------------------------ help

def test_parse_help(help10):
    assert help10.version == "10.9.0"
    assert set(tool.REQUIRED_FLAGS) | {"--fp16", "--noTF32", "--useCudaGraph", "--noDataTransfers", "--useSpinWait",
                                     "--skipInference", "--help"} <= help10.flags
    assert "--noCudaGraph" not in help10.flags
    assert help10.feature_default("--useCudaGraph", "--noCudaGraph") is False
    assert help10.feature_default("--dataTransfers", "--noDataTransfers") is True
    assert help10.feature_default("--useSpinWait") is False
    assert help10.feature_default("--onnx") is None


@pytest.mark.parametrize("code, version", [(100900, "10.9.0"), (100500, "10.5.0"), (110100, "11.1.0"),
                                           (8403, "8.4.3"), (8601, "8.6.1")])
def test_banner_version(code, version):
    assert tool.version_from_code(code) == version


# -------------------------------------------------------------------------------------------- commands

def test_protocol_to_settings():
    s = tool.settings_for(get_protocol("paper", "gpu"), {})
    assert (s.iterations, s.duration_s, s.warmup_ms) == (20, 0.0, 200.0)
    s = tool.settings_for(get_protocol("default"), {"cuda_graph": "true", "copies": "1", "spin_wait": "false"})
    assert (s.iterations, s.duration_s, s.warmup_ms) == (5, 0.25, 1000.0)
    assert (s.cuda_graph, s.copies, s.spin_wait) == (True, True, False)
    assert tool.settings_for(get_protocol("quick"), {}).warmup_ms == tool.MIN_WARMUP_MS  # 50 ms asked: floor
    with pytest.raises(UserError, match="cuda_graph=true or cuda_graph=false"):
        tool.settings_for(get_protocol("quick"), {"cuda_graph": "sometimes"})


def test_build_command_trt10(help10, tmp_path):
    d = tmp_path / "a dir with spaces"
    args, notes = tool.build_command("/opt/trt/bin/trtexec", d / "m.onnx", d / "m.engine", d / "layers.json",
                                   d / "t.cache", tool.TrtexecSettings(), help10)
    assert args == ["/opt/trt/bin/trtexec", f"--onnx={d / 'm.onnx'}", f"--saveEngine={d / 'm.engine'}", "--fp16",
                    "--builderOptimizationLevel=3", f"--timingCacheFile={d / 't.cache'}",
                    "--profilingVerbosity=detailed", f"--exportLayerInfo={d / 'layers.json'}", "--skipInference"]
    assert notes == []
    args, _ = tool.build_command("trtexec", Path("m.onnx"), Path("e"), Path("l"), Path("c"),
                               tool.TrtexecSettings(precision="fp32", opt_level=5), help10)
    assert "--noTF32" in args and "--fp16" not in args and "--builderOptimizationLevel=5" in args


def test_run_command_trt10_states_every_choice(help10):
    s = tool.TrtexecSettings(warmup_ms=200, iterations=20, duration_s=0)
    args, notes = tool.run_command("trtexec", Path("/c/m.engine"), Path("/t/r0.json"), s, help10)
    assert args == ["trtexec", "--loadEngine=/c/m.engine", "--warmUp=200", "--iterations=20", "--duration=0",
                    "--noDataTransfers", "--useSpinWait", "--exportTimes=/t/r0.json"]
    # TensorRT 10's trtexec has no --noCudaGraph: its help states the default, and the note says so
    assert notes[0] == "cuda_graph=False: this trtexec has no --noCudaGraph; its help states the default (disabled)"
    args, notes = tool.run_command("trtexec", Path("e"), Path("t"), tool.TrtexecSettings(
        cuda_graph=True, copies=True, spin_wait=True, duration_s=0.25), help10)
    assert "--useCudaGraph" in args and "--noDataTransfers" not in args and "--duration=0.25" in args
    assert "copies=True: this trtexec has no --dataTransfers; its help states the default (enabled)" in notes
    args, notes = tool.run_command("trtexec", Path("e"), Path("t"), tool.TrtexecSettings(spin_wait=False), help10)
    assert "--useSpinWait" not in args and notes[-1].endswith("its help states the default (disabled)")


def test_every_flag_we_emit_is_one_the_help_lists(help10):
    for graph in (True, False):
        for copies in (True, False):
            s = tool.TrtexecSettings(cuda_graph=graph, copies=copies)
            run, _ = tool.run_command("trtexec", Path("e"), Path("t"), s, help10)
            build, _ = tool.build_command("trtexec", Path("m"), Path("e"), Path("l"), Path("c"), s, help10)
            for arg in run[1:] + build[1:]:
                assert arg.split("=")[0] in help10.flags, arg


def test_a_strongly_typed_trtexec(help_synthetic):
    """A trtexec without --fp16 and with --noCudaGraph/--noSpinWait (synthetic help: see fixtures/README.md)."""
    with pytest.raises(UserError, match="TensorRT 10"):
        tool.build_command("trtexec", Path("m"), Path("e"), Path("l"), Path("c"), tool.TrtexecSettings(), help_synthetic)
    args, _ = tool.build_command("trtexec", Path("m"), Path("e"), Path("l"), Path("c"),
                               tool.TrtexecSettings(precision="fp32"), help_synthetic)
    assert "--fp16" not in args and "--noTF32" not in args
    args, _ = tool.run_command("trtexec", Path("e"), Path("t"), tool.TrtexecSettings(spin_wait=False), help_synthetic)
    assert {"--noCudaGraph", "--noDataTransfers", "--noSpinWait"} <= set(args)


def test_unknown_defaults_are_never_guessed():
    bare = tool.TrtexecHelp(frozenset(tool.REQUIRED_FLAGS) | {"--useCudaGraph"})
    with pytest.raises(UserError, match="copies=False"):
        tool.run_command("trtexec", Path("e"), Path("t"), tool.TrtexecSettings(cuda_graph=True), bare)
    with pytest.raises(UserError, match="lacks --exportTimes"):
        tool.check_core_flags(tool.TrtexecHelp(frozenset(tool.REQUIRED_FLAGS) - {"--exportTimes"}))


# --------------------------------------------------------------------------------------------- parsing

def test_parse_times(times10, fixtures):
    raw = json.loads((fixtures / "trtexec_times_trt10.json").read_text())
    assert len(times10) == 25 == len(raw)
    assert times10.compute_ms[0] == raw[0]["computeMs"] and times10.latency_ms[-1] == raw[-1]["latencyMs"]
    lat = np.array(times10.latency_ms)
    parts = np.array(times10.h2d_ms) + np.array(times10.compute_ms) + np.array(times10.d2h_ms)
    assert np.allclose(lat, parts, atol=2e-6)  # latency = H2D + compute + D2H (6 significant digits each)
    assert times10.enqueue_ms[0] == pytest.approx(raw[0]["endEnqMs"] - raw[0]["startEnqMs"])


@pytest.mark.parametrize("bad", ["[]", "{}", '[{"latencyMs": 1.0}]', '[{"computeMs": 1, "latencyMs": 1}, 3]'])
def test_parse_times_rejects_other_files(bad):
    with pytest.raises(ValueError, match="not a trtexec --exportTimes file"):
        tool.parse_times(bad)


def test_parse_log(log10):
    assert (log10["version"], log10["device"], log10["compute_capability"], log10["sms"]) == \
        ("10.9.0", "NVIDIA H100 80GB HBM3", "9.0", 132)
    assert log10["device_uuid"].startswith("GPU-5d1b2c3e")
    assert (log10["warmup_queries"], log10["warmup_ms"], log10["trace_queries"]) == (412, 200.0, 25)
    assert log10["deserialize_s"] == pytest.approx(0.0121743)
    assert log10["passed"] and not log10["failed"]
    gpu = log10["summary"]["GPU Compute Time"]
    assert set(gpu) == {"min", "max", "mean", "median", "p90", "p95", "p99"}
    assert set(log10["summary"]) == {"Latency", "Enqueue Time", "H2D Latency", "GPU Compute Time", "D2H Latency"}
    assert log10["throughput_qps"] == pytest.approx(2121.88)
    assert log10["compute_cv_pct"] == pytest.approx(7.80086)
    assert log10["warnings"][0].startswith("* GPU compute time is unstable")


def test_the_json_samples_and_the_printed_summary_agree(times10, log10):
    """The two outputs of one run, parsed independently, tell the same story."""
    assert len(times10) == log10["trace_queries"]
    for name, values in (("GPU Compute Time", times10.compute_ms), ("Latency", times10.latency_ms)):
        printed = log10["summary"][name]
        assert np.median(values) == pytest.approx(printed["median"], rel=1e-5)
        assert min(values) == pytest.approx(printed["min"], rel=1e-5)
        assert max(values) == pytest.approx(printed["max"], rel=1e-5)
        assert np.mean(values) == pytest.approx(printed["mean"], rel=1e-5)


def test_old_exports_with_warmups_are_aligned_with_the_log(fixtures, times10, log10):
    old = tool.parse_times((fixtures / "trtexec_times_trt8_with_warmup.json").read_text())
    assert len(old) == 29
    kept, notes = tool.align_with_log(old, log10)
    assert len(kept) == 25 and kept.compute_ms == old.compute_ms[4:] and "4 warm-up" in notes[0]
    assert tool.align_with_log(times10, log10) == (times10, [])
    _, notes = tool.align_with_log(times10.last(20), log10)
    assert "reports 25 queries" in notes[0]


def test_one_round_through_the_loop_keeps_the_tool_s_figures(times10, log10):
    """What the one measurement loop makes of trtexec's rounds (host = Latency, device = GPU compute)."""
    class Rounds:
        def warm_up(self, p):
            return 0, 0.0

        def time_round(self, p):
            return TimedRound(tuple(times10.latency_ms), tuple(times10.compute_ms),
                              measured_s=sum(times10.latency_ms) / 1000, warmup_iters=log10["warmup_queries"],
                              load_ms=log10["deserialize_s"] * 1000, flags=tuple(tool.flags_from([log10])))

    p = get_protocol("quick")
    m = measure(Rounds(), p)
    assert m.samples_ms == [list(times10.latency_ms)] * 3
    assert m.device_samples_ms == [list(times10.compute_ms)] * 3
    assert m.summary == summarize(m.samples_ms, "median").to_dict()
    assert m.device_summary["median_ms"] == pytest.approx(np.median(times10.compute_ms))
    assert m.load_ms == pytest.approx(12.1743) and m.warmup_iters == 3 * 412
    assert m.stop_reason == "protocol complete"
    assert m.flags == ["trtexec: GPU compute time is unstable, with coefficient of variance = 7.80086%."]
    assert "not a host wall clock" in tool.LATENCY_NOTE


# ---------------------------------------------------------------------------------------------- runner

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


def test_find_trtexec(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(tool.TRTEXEC_ENV, raising=False)
    monkeypatch.setattr(tool, "KNOWN_LOCATIONS", (str(tmp_path / "none" / "trtexec"),))
    with pytest.raises(MissingBackendError, match=r"trtexec not found .*\$TRTEXEC"):
        tool.find_trtexec(None)
    with pytest.raises(MissingBackendError, match="not an executable"):
        tool.find_trtexec(str(tmp_path / "missing"))
    exe = tmp_path / "trtexec"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert tool.find_trtexec(None) == str(exe)
    monkeypatch.setenv(tool.TRTEXEC_ENV, str(exe))
    assert tool.find_trtexec(None) == str(exe)
