"""trtexec: help -> flags, the command lines, the --exportTimes and text parsers on fixtures in trtexec's
documented formats (bench/tools/trtexec.py). The engine build as an exporter (exporters/trtexec.py) and the
runner's rounds through the one loop (devices/trtexec.py), over a stand-in trtexec, are in
tests/devices/test_trtexec_runner.py."""
import json
from pathlib import Path

import numpy as np
import pytest

from bench.core.errors import MissingBackendError, UserError
from bench.core.protocol import get_protocol
from bench.stats import summarize
from bench.core.runner import TimedRound
from bench.measure import measure
from bench.tools import trtexec as tool


@pytest.fixture
def help10(fixtures):
    return tool.parse_help((fixtures / "trtexec_help_trt10.txt").read_text())


@pytest.fixture
def help_synthetic(fixtures):
    return tool.parse_help((fixtures / "trtexec_help_synthetic_strongly_typed.txt").read_text())


@pytest.fixture
def help10_16(fixtures):
    """TensorRT 10.16.1's real help (tests/fixtures/gpu/README.md says how it was made)."""
    return tool.parse_help((fixtures / "trtexec_help_trt10_16.txt").read_text())


@pytest.fixture
def help11(fixtures):
    """TensorRT 11.1.0's real help."""
    return tool.parse_help((fixtures / "trtexec_help_trt11_1.txt").read_text())


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
    assert "copies=True: this trtexec has no --includeDataTransfers; its help states the default (enabled)" in notes
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
    """A trtexec without --fp16 and with --noCudaGraph/--noSpinWait (synthetic help: tests/fixtures/gpu/README.md)."""
    assert help_synthetic.fp16_build == tool.STRONGLY_TYPED_FP16
    args, notes = tool.build_command("trtexec", Path("m16"), Path("e"), Path("l"), Path("c"), tool.TrtexecSettings(),
                                     help_synthetic)
    assert "--fp16" not in args and "--onnx=m16" in args and "strongly typed from the fp16 ONNX" in notes[0]
    args, _ = tool.build_command("trtexec", Path("m"), Path("e"), Path("l"), Path("c"),
                               tool.TrtexecSettings(precision="fp32"), help_synthetic)
    assert "--fp16" not in args and "--noTF32" not in args
    args, _ = tool.run_command("trtexec", Path("e"), Path("t"), tool.TrtexecSettings(spin_wait=False), help_synthetic)
    assert {"--noCudaGraph", "--noDataTransfers", "--noSpinWait"} <= set(args)


# ------------------------------------------------------------- the real help texts of TensorRT 10 and 11

def test_real_help_texts_parse(help10_16, help11):
    assert (help10_16.version, help11.version) == ("10.16.1", "11.1.0")
    assert set(tool.REQUIRED_FLAGS) <= help10_16.flags and set(tool.REQUIRED_FLAGS) <= help11.flags
    # 10: --fp16 is live; 11 has none, and its old toggles are deprecated no-ops
    assert help10_16.live("--fp16") and "--fp16" not in help11.flags
    assert help10_16.deprecated == frozenset()
    assert {"--noDataTransfers", "--useSpinWait", "--useCudaGraph", "--stronglyTyped"} <= help11.deprecated
    assert help11.live("--includeDataTransfers") and help11.live("--noSpinWait") and help11.live("--noCudaGraph")
    # the defaults each help states, read through either flag of the pair
    for help, graph, copies, spin in ((help10_16, False, True, False), (help11, True, False, True)):
        assert help.feature_default(*tool.TOGGLES["cuda_graph"]) is graph
        assert help.feature_default(*tool.TOGGLES["copies"]) is copies
        assert help.feature_default(*tool.TOGGLES["spin_wait"]) is spin
    assert (help10_16.fp16_build, help11.fp16_build) == (tool.WEAKLY_TYPED_FP16, tool.STRONGLY_TYPED_FP16)


# every combination of the three toggles, on each help: (the toggle flags emitted)
EXPECTED_TOGGLES = {
    # (cuda_graph, copies, spin_wait): (TensorRT 10.16, TensorRT 11.1)
    (False, False, True): ({"--noDataTransfers", "--useSpinWait"}, {"--noCudaGraph"}),
    (False, False, False): ({"--noDataTransfers"}, {"--noCudaGraph", "--noSpinWait"}),
    (False, True, True): ({"--useSpinWait"}, {"--noCudaGraph", "--includeDataTransfers"}),
    (False, True, False): (set(), {"--noCudaGraph", "--includeDataTransfers", "--noSpinWait"}),
    (True, False, True): ({"--useCudaGraph", "--noDataTransfers", "--useSpinWait"}, set()),
    (True, False, False): ({"--useCudaGraph", "--noDataTransfers"}, {"--noSpinWait"}),
    (True, True, True): ({"--useCudaGraph", "--useSpinWait"}, {"--includeDataTransfers"}),
    (True, True, False): ({"--useCudaGraph"}, {"--includeDataTransfers", "--noSpinWait"}),
}


@pytest.mark.parametrize("choice", sorted(EXPECTED_TOGGLES))
def test_flag_tables_on_both_real_helps(choice, help10_16, help11):
    """Fault 2: copies=true raised a UserError on 11 (there is no --dataTransfers), and 11 was sent its
    deprecated no-ops. Every flag emitted is one the help lists and none is deprecated."""
    graph, copies, spin = choice
    s = tool.TrtexecSettings(cuda_graph=graph, copies=copies, spin_wait=spin)
    toggles = {f for pair in tool.TOGGLES.values() for f in pair}
    for help, expected in zip((help10_16, help11), EXPECTED_TOGGLES[choice]):
        args, notes = tool.run_command("trtexec", Path("e"), Path("t"), s, help)
        assert {a for a in args if a in toggles} == expected, help.version
        for arg in args[1:]:
            assert help.live(arg.split("=")[0]), (help.version, arg)
        assert len(notes) == 3


def test_trt11_deprecated_no_ops_are_left_to_the_stated_default(help11):
    _, notes = tool.run_command("trtexec", Path("e"), Path("t"), tool.TrtexecSettings(cuda_graph=True), help11)
    assert notes[0] == "cuda_graph=True: --useCudaGraph is a deprecated no-op; its help states the default (enabled)"
    assert notes[1] == "copies=False: --noDataTransfers is a deprecated no-op; its help states the default (disabled)"


def test_build_commands_on_both_real_helps(help10_16, help11):
    s = tool.TrtexecSettings()
    args10, notes10 = tool.build_command("trtexec", Path("m32.onnx"), Path("e"), Path("l"), Path("c"), s, help10_16)
    args11, notes11 = tool.build_command("trtexec", Path("m16.onnx"), Path("e"), Path("l"), Path("c"), s, help11)
    assert "--fp16" in args10 and notes10 == []
    assert "--fp16" not in args11 and "--stronglyTyped" not in args11  # a deprecated no-op on 11
    assert "built strongly typed from the fp16 ONNX" in notes11[0]
    for help, args in ((help10_16, args10), (help11, args11)):
        for arg in args[1:]:
            assert help.live(arg.split("=")[0]), (help.version, arg)
    args, _ = tool.build_command("trtexec", Path("m"), Path("e"), Path("l"), Path("c"),
                                 tool.TrtexecSettings(precision="fp32"), help11)
    assert "--noTF32" in args


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


# ---------------------------------------------------------------------------------------------- lookup

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
