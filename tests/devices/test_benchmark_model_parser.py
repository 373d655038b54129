"""benchmark_model's output, parsed from real logs of the tool (tests/fixtures/tflite/README.md: their sources)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.core.errors import UserError
from devices.benchmark_model_parser import delegated_share, parse, parse_stats

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tflite"


def _read(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_cpu_run_with_op_profiling():
    out = parse(_read("benchmark_model_cpu_op_profiling.txt"))
    assert out.init_ms == pytest.approx(17.187)
    assert out.first_inference_ms == pytest.approx(3512.391)
    assert out.warmup_avg_ms == pytest.approx(3512.39)
    assert out.inference_avg_ms == pytest.approx(2950.34)  # "2.95034e+06" us
    assert out.warmup.count == 1 and out.warmup.min_us == out.warmup.max_us == 3512391
    s = out.inference
    assert (s.count, s.first_us, s.min_us, s.max_us, s.std_us) == (50, 2990275, 2727568, 3189954, 109798)
    assert s.avg_us == pytest.approx(2950340) and s.median_us is None
    assert out.model_size_mb == pytest.approx(16.9008)
    assert out.memory_mb == {"init": pytest.approx(4.21094), "overall": pytest.approx(46.0859)}
    # The regular runs' profile, not the initialization profile (AllocateTensors) before it.
    assert len(out.op_profile) == 31
    first, last = out.op_profile[0], out.op_profile[-1]
    assert (first.node_type, first.first_ms, first.avg_ms, first.percent, first.times_called) == (
        "CONV_2D", 87.754, 60.957, 2.066, 1)
    assert first.name == "[MobilenetV1/MobilenetV1/Conv2d_0/Relu6]:0"
    assert (last.node_type, last.cdf_percent) == ("SOFTMAX", 100.0)
    assert [(r.node_type, r.count) for r in out.op_summary] == [
        ("CONV_2D", 15), ("DEPTHWISE_CONV_2D", 13), ("AVERAGE_POOL_2D", 1), ("SOFTMAX", 1), ("SQUEEZE", 1)]
    assert out.op_summary[0].avg_ms == pytest.approx(2651.853)
    share = delegated_share(out)
    assert share["delegate_kernels"] == 0 and share["ops_not_delegated"]["CONV_2D"] == 15
    assert out.delegations == () and not out.delegate_fell_back


def test_nnapi_run_with_log_prefixes_and_delegation():
    out = parse(_read("benchmark_model_nnapi_tf2.15.txt"))
    assert out.tool_version == "2.15.0"
    assert out.nnapi_accelerators == ("synap-npu", "nnapi-reference")
    assert [(d.delegate, d.replaced, d.total, d.partitions) for d in out.delegations] == [
        ("TfLiteNnapiDelegate", 31, 31, 1)]
    assert out.init_ms == pytest.approx(66.002) and out.first_inference_ms == pytest.approx(637.079)
    assert out.inference_avg_ms == pytest.approx(1.88574)
    assert (out.inference.count, out.inference.min_us, out.inference.max_us) == (520, 1171, 9925)
    assert out.warmup.count == 1
    assert delegated_share(out)["delegation"]["replaced"] == 31


def test_logcat_prefix_and_percentiles():
    out = parse(_read("benchmark_model_logcat_percentiles.txt"))
    s = out.inference
    assert (s.count, s.p5_us, s.median_us, s.p95_us) == (25, 140545, 141253, 187533)
    assert out.warmup.count == 3 and out.warmup.median_us == 200386
    assert out.delegations[0].replaced == 539 and out.delegations[0].total == 548
    assert out.delegations[0].partitions == 19
    assert out.inference_avg_ms == pytest.approx(145.528)


def test_silent_cpu_fallback_is_noticed():
    text = _read("benchmark_model_nnapi_tf2.15.txt").replace(
        "INFO: Explicitly applied NNAPI delegate, and the model graph will be completely executed by the delegate.",
        "INFO: Though NNAPI delegate is explicitly applied, the model graph will not be executed by the delegate.")
    assert parse(text).delegate_fell_back


def test_single_value_stats_line():
    s = parse_stats("count=1 curr=637079")
    assert (s.count, s.min_us, s.avg_us, s.std_us) == (1, 637079, 637079, 0.0)
    assert parse_stats("Timings (microseconds): count=50 first=1") is None


def test_a_failed_run_is_a_clear_error():
    log = "INFO: STARTING!\nERROR: Could not open '/data/local/tmp/x.tflite'.\nERROR: Benchmarking failed.\n"
    with pytest.raises(UserError, match=r"no inference timings .* Benchmarking failed\."):
        parse(log)
