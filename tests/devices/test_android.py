"""The android runner without a phone: command lines, protocol -> flags, parsing of adb's answers, errors.

A phone cannot be attached here; the orchestration test stands a recorded adb in for it (the benchmark text
it returns is a real log of the tool)."""
from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from bench.core.errors import MissingBackendError, UserError
from bench.core.protocol import PRESETS
from bench.measure import measure
from devices import android as A
from bench.core.runner import RunnerOptions
from bench.core.artifact import ExportArtifact

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tflite"
BIN = f"{A.REMOTE_DIR}/benchmark_model"


def test_commands_are_argument_lists_quoted_for_the_phone_shell():
    assert A.adb("R58M", "devices") == ["adb", "-s", "R58M", "devices"]
    assert A.adb(None, "devices") == ["adb", "devices"]
    assert A.push("R58M", Path("/tmp/a b.tflite"), "/data/local/tmp/x.tflite") == [
        "adb", "-s", "R58M", "push", "/tmp/a b.tflite", "/data/local/tmp/x.tflite"]
    assert A.shell("R58M", ["ls", "/data/local/tmp/a b", "x;rm -rf /"]) == [
        "adb", "-s", "R58M", "shell", "ls", "'/data/local/tmp/a b'", "'x;rm -rf /'"]
    assert A.thermal(None) == ["adb", "shell", "dumpsys", "thermalservice"]
    assert A.getprop("R58M") == ["adb", "-s", "R58M", "shell", "getprop"]


def test_pixel_tpu_flags_and_protocol_mapping():
    args = A.benchmark_args(BIN, "/data/local/tmp/m.tflite", PRESETS["paper"], 1, "nnapi")
    assert args == [BIN, "--graph=/data/local/tmp/m.tflite", "--num_threads=1", "--warmup_runs=1",
                    "--warmup_min_secs=0", "--num_runs=1000", "--min_secs=0", "--max_secs=3600",
                    "--use_nnapi=true", "--nnapi_accelerator_name=google-edgetpu", "--disable_nnapi_cpu=true"]
    default = A.benchmark_args(BIN, "m", PRESETS["default"], 4, "gpu", op_profiling=True)
    assert default[2:8] == ["--num_threads=4", "--warmup_runs=10", "--warmup_min_secs=1", "--num_runs=25",
                            "--min_secs=1.25", "--max_secs=75"]
    assert default[8:] == ["--use_gpu=true", "--enable_op_profiling=true", "--max_profiling_buffer_entries=4096"]
    assert A.delegate_flags("cpu") == ["--use_xnnpack=true"]
    assert A.delegate_flags("nnapi", "qti-htp")[1] == "--nnapi_accelerator_name=qti-htp"
    mlperf = A.run_params(PRESETS["mlperf"])
    assert (mlperf.num_runs, mlperf.min_secs, mlperf.max_secs) == (1024, 60.0, A.MAX_SECS_CAP)
    modelbench = A.run_params(PRESETS["modelbench"])
    assert (modelbench.num_runs, modelbench.warmup_runs) == (1000, 1)  # 20 rounds x 50; one warm-up at least
    with pytest.raises(UserError, match="delegate 'tpu' is not one of nnapi, gpu, cpu"):
        A.delegate_flags("tpu")


def test_adb_answers_are_parsed():
    devices = "List of devices attached\nR58M123\tdevice\nemulator-5554\toffline\n0A1B\tunauthorized\n\n"
    assert A.parse_devices(devices) == [("R58M123", "device"), ("emulator-5554", "offline"), ("0A1B", "unauthorized")]
    props = ("[ro.product.model]: [Pixel 6]\n[ro.build.version.release]: [14]\n[ro.soc.model]: [GS101]\n"
             "[ro.soc.manufacturer]: [Google]\n[ro.board.platform]: [gs101]\n[ro.product.cpu.abi]: [arm64-v8a]\n"
             "[ro.build.version.sdk]: [34]\n[persist.sys.x]: []\n")
    assert A.parse_props(props) == {"model": "Pixel 6", "android": "14", "sdk": "34", "soc_manufacturer": "Google",
                                    "soc_model": "GS101", "platform": "gs101", "abi": "arm64-v8a"}
    # dumpsys thermalservice, as Android prints it: the cached block can be stale; the HAL's current one counts.
    dump = ("IsStatusOverride: false\nThermal Status: 2\nCached temperatures:\n"
            "\tTemperature{mValue=99.0, mType=0, mName=BIG, mStatus=3}\nHAL Ready: true\n"
            "Current temperatures from HAL:\n\tTemperature{mValue=41.5, mType=0, mName=BIG, mStatus=0}\n"
            "\tTemperature{mValue=36.274, mType=3, mName=VIRTUAL-SKIN, mStatus=0}\n"
            "Current cooling devices from HAL:\n\tCoolingDevice{mValue=0, mType=5, mName=tpu_cooling}\n")
    assert A.parse_thermal(dump) == {"status": 2, "status_name": "moderate",
                                     "temperatures_c": {"BIG": 41.5, "VIRTUAL-SKIN": 36.274}}
    assert A.parse_thermal("Can't find service: thermalservice")["status"] is None


def _no_adb(_name):
    return None


def test_no_adb_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # the real lookup, on an empty PATH
    avail = A.check()
    assert avail.status == "unavailable" and avail.reason.startswith("adb not found on PATH")
    assert "\n" not in avail.reason
    runner = A.AndroidRunner(RunnerOptions(threads=1, extra={"benchmark_model": __file__}))
    with pytest.raises(MissingBackendError, match="adb not found on PATH"):
        runner.load(_artifact(tmp_path))


def test_no_phone_and_unauthorized_phone(tmp_path):
    def answering(text):
        return lambda cmd, timeout=None: subprocess.CompletedProcess(cmd, 0, text, "")

    which = (lambda name: "/usr/bin/adb")
    none = A.check(run=answering("List of devices attached\n\n"), which=which)
    assert none.status == "unavailable" and "no Android device attached" in none.reason
    unauth = A.check(run=answering("List of devices attached\n0A1B\tunauthorized\n"), which=which)
    assert "accept the USB debugging prompt" in unauth.reason
    assert A.check(run=answering("List of devices attached\n0A1B\tdevice\n"), which=which).status == "available"


def test_missing_binary_is_a_user_error(tmp_path):
    runner = A.AndroidRunner(RunnerOptions(threads=1, extra={}), which=_no_adb)
    with pytest.raises(UserError, match="needs the benchmark_model binary; download TFLite.s prebuilt "
                                        "benchmark_model for android_aarch64"):
        runner.load(_artifact(tmp_path))
    runner = A.AndroidRunner(RunnerOptions(threads=1, extra={"benchmark_model": str(tmp_path / "nope")}))
    with pytest.raises(UserError, match="binary .*nope not found"):
        runner.load(_artifact(tmp_path))


def _artifact(tmp_path) -> ExportArtifact:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"TFL3")
    return ExportArtifact(model="mobileone_s0", target="tflite", precision="int8", path=str(model),
                          input_name="args_0", input_shape=(1, 224, 224, 3), input_dtype="int8",
                          output_name="output_0", sha256="ab" * 32, cache_key="k")


class RecordedAdb:
    """Stands in for adb and a Pixel: answers each command from a script and keeps the command lines."""

    def __init__(self, benchmark_text: str, thermal_status=(0, 1)):
        self.calls: list[list[str]] = []
        self.benchmark_text = benchmark_text
        self.thermal = list(thermal_status)

    def __call__(self, cmd, timeout=None):
        self.calls.append(cmd)
        assert isinstance(cmd, list) and all(isinstance(c, str) for c in cmd)
        out = ""
        if cmd[-1] == "devices":
            out = "List of devices attached\nR58M123\tdevice\n"
        elif cmd[-1] == "getprop":
            out = "[ro.product.model]: [Pixel 6]\n[ro.build.version.release]: [14]\n[ro.soc.model]: [GS101]\n"
        elif cmd[-2:] == ["dumpsys", "thermalservice"]:
            out = (f"Thermal Status: {self.thermal.pop(0)}\nCurrent temperatures from HAL:\n"
                   "\tTemperature{mValue=38.0, mType=3, mName=VIRTUAL-SKIN, mStatus=0}\n")
        elif "--graph=" in " ".join(cmd):
            out = self.benchmark_text
        return subprocess.CompletedProcess(cmd, 0, out, "")


def test_orchestration_push_run_parse(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    adb = RecordedAdb((FIXTURES / "benchmark_model_nnapi_tf2.15.txt").read_text())
    runner = A.AndroidRunner(RunnerOptions(threads=1, extra={"benchmark_model": str(binary), "op_profiling": True}),
                             run=adb, which=lambda name: "/usr/bin/adb")
    with runner:
        runner.load(_artifact(tmp_path))
        remote_model = f"{A.REMOTE_DIR}/mobileone_s0-{'ab' * 6}.tflite"
        assert ["adb", "-s", "R58M123", "push", str(binary), BIN] in adb.calls
        assert ["adb", "-s", "R58M123", "push", str(tmp_path / "model.tflite"), remote_model] in adb.calls
        assert ["adb", "-s", "R58M123", "shell", "chmod", "755", BIN] in adb.calls
        m = measure(runner, replace(PRESETS["paper"]))  # the one loop, over the tool's own round
        info = runner.info()
    bench_cmd = next(c for c in adb.calls if any(a.startswith("--graph=") for a in c))
    assert bench_cmd[:5] == ["adb", "-s", "R58M123", "shell", BIN]
    assert "--enable_op_profiling=true" in bench_cmd and "--num_runs=1000" in bench_cmd
    assert adb.calls[-1] == ["adb", "-s", "R58M123", "shell", "rm", "-f", remote_model]  # close() cleans up
    assert m.summary["statistic"] == "min" and m.summary["latency_ms"] == pytest.approx(1.171)
    assert m.summary["mean_ms"] == pytest.approx(1.88574) and m.summary["count"] == 520
    assert m.load_ms == pytest.approx(66.002) and m.first_inference_ms == pytest.approx(637.079)
    assert m.warmup_iters == 1 and m.samples_ms == [] and len(m.aggregates) == 1
    assert m.stop_reason == "the tool's own protocol (aggregates only)"
    assert info["phone"] == {"model": "Pixel 6", "android": "14", "soc_model": "GS101"}
    assert info["thermal_before"]["status"] == 0 and info["thermal_after"]["status"] == 1
    assert info["delegation"] == {"delegate": "TfLiteNnapiDelegate", "replaced": 31, "total": 31, "partitions": 1}
    assert "thermal-status-rose" in m.flags and "aggregates-only" in m.flags


def test_median_falls_back_to_mean_when_the_tool_prints_no_percentiles(tmp_path):
    from devices.benchmark_model_parser import parse

    out = parse((FIXTURES / "benchmark_model_nnapi_tf2.15.txt").read_text())
    summary, flags = A.summary_from(out, PRESETS["default"])
    assert summary["statistic"] == "mean" and "statistic-unavailable:median" in flags
    with_percentiles = parse((FIXTURES / "benchmark_model_logcat_percentiles.txt").read_text())
    summary, flags = A.summary_from(with_percentiles, PRESETS["default"])
    assert summary["statistic"] == "median" and summary["latency_ms"] == pytest.approx(141.253)


def test_two_phones_need_a_serial(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")

    def two(cmd, timeout=None):
        return subprocess.CompletedProcess(cmd, 0, "List of devices attached\nA1\tdevice\nB2\tdevice\n", "")

    runner = A.AndroidRunner(RunnerOptions(threads=1, extra={"benchmark_model": str(binary)}), run=two,
                             which=lambda name: "/usr/bin/adb")
    with pytest.raises(UserError, match="2 phones attached .*--option android.serial=SERIAL"):
        runner.load(_artifact(tmp_path))
    runner = A.AndroidRunner(RunnerOptions(threads=1, extra={"benchmark_model": str(binary), "serial": "C3"}),
                             run=two, which=lambda name: "/usr/bin/adb")
    with pytest.raises(UserError, match="phone C3 is not attached"):
        runner.load(_artifact(tmp_path))
