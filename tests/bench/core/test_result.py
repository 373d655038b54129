"""The typed result record: conversion of dicts, validation with one-line errors, strict-JSON round trips, and
the one function that builds a comparability key."""
import json
import math
from types import SimpleNamespace

import pytest

from bench.core.artifact import ExportArtifact
from bench.core.errors import UserError
from bench.core.protocol import PRESETS, Protocol, settings_from_json, settings_to_json
from bench.core.result import (
    FAILED,
    ComparabilityKey,
    ExternalProtocol,
    InvalidField,
    LatencyResult,
    RejectedRound,
    Summary,
)
from devices.registry import comparability_key
from bench.stats import summarize

ENV = {"hostname": "h", "cpu": {"model": "Test CPU"}, "libraries": {"onnxruntime": "1.31.1", "torch": "2.13.0"},
       "os": {"system": "Linux", "version": "#1 SMP"}}
ARTIFACT = {"model": "mobileone_s0", "target": "onnx", "precision": "fp32", "path": "/c/model.onnx",
            "input_name": "input", "input_shape": [1, 3, 224, 224], "input_dtype": "float32", "output_name": "logits",
            "sha256": "ab" * 32, "cache_key": "k", "tool_versions": {"onnx": "1.17"},
            "metadata": {"parity": {"rel_error": 1e-6, "passed": True}}}


def rounds():
    return [[1.0, 1.1, 1.2], [1.05, 1.15, 0.95], [1.0, 1.0, 1.3]]


def ok_cell(**over):
    kw = dict(model="mobileone_s0", device="cpu", runner="onnxruntime", threads=2,
              protocol=PRESETS["paper"].to_dict(), summary=summarize(rounds()).to_dict(), samples_ms=rounds(),
              contention=[0.0, 0.1, None], rejected_rounds=[{"samples_ms": [2.0, 2.1], "contention": 0.6}],
              artifact=ARTIFACT, model_info={"params_m": 2.08}, runner_info={"providers": ["CPU"]},
              env_key=comparability_key(ENV, "cpu", "onnxruntime", 2, "fp32"))
    kw.update(over)
    return LatencyResult(**kw)


def test_dicts_become_typed_records():
    c = ok_cell()
    assert isinstance(c.summary, Summary) and c.summary.count == 9 and c.latency_ms == c.summary.latency_ms
    assert isinstance(c.protocol, Protocol) and c.protocol.round_max_s == math.inf
    assert isinstance(c.artifact, ExportArtifact) and c.artifact.input_shape == (1, 3, 224, 224)
    assert isinstance(c.env_key, ComparabilityKey) and c.env_key.runtime_version == "onnxruntime 1.31.1"
    assert c.rejected_rounds == [RejectedRound([2.0, 2.1], 0.6)]
    # typed values are taken as they are
    assert ok_cell(summary=c.summary, protocol=c.protocol, artifact=c.artifact, env_key=c.env_key) == c


def test_to_dict_is_strict_json_and_round_trips():
    c = ok_cell()
    d = c.to_dict()
    text = json.dumps(d, allow_nan=False)  # no Infinity/NaN anywhere
    assert d["protocol"]["round_max_s"] is None and d["protocol"]["max_s"] is None  # paper: no caps
    back = LatencyResult.from_dict(json.loads(text), strict=True)
    assert back == c and back.protocol.max_s == math.inf


def test_protocol_json_helpers():
    p = PRESETS["modelbench"]
    j = p.to_json()
    assert j["round_max_s"] is None and j["max_s"] is None and j["target_rel_ci"] is None
    assert Protocol.from_json(j) == p
    assert settings_to_json({"max_s": math.inf, "trim": 2}) == {"max_s": None, "trim": 2}
    assert settings_from_json({"max_s": None, "round_max_iters": None}) == {"max_s": math.inf,
                                                                              "round_max_iters": None}


def test_the_error_names_the_cell_and_the_field():
    s = summarize(rounds()).to_dict()
    with pytest.raises(UserError) as e:
        ok_cell(summary={**s, "latency_ms": -1.0})
    assert str(e.value) == ("cell mobileone_s0|cpu|onnxruntime|deploy: summary.latency_ms = -1.0 must be a "
                            "finite number > 0")


@pytest.mark.parametrize("over, fragment", [
    ({"samples_ms": [[1.0, -2.0]]}, "samples_ms[0][1] = -2.0 must be a finite number > 0"),
    ({"samples_ms": [[1.0, math.inf]]}, "samples_ms[0][1] = inf must be a finite number > 0"),
    ({"device_samples_ms": [[math.nan]]}, "device_samples_ms[0][0] = nan must be"),
    ({"samples_ms": [1.0, 2.0]}, "samples_ms[0] = 1.0 must be a list of milliseconds"),
    ({"samples_ms": "1.0"}, "samples_ms = '1.0' must be a list of rounds"),
    ({"summary": {"statistic": "median", "latency_ms": "1.0"}}, "summary.latency_ms = '1.0' must be a finite"),
    ({"summary": {"statistic": "median", "latency_ms": 1.0, "count": -3}}, "summary.count = -3 must be a whole"),
    ({"summary": {"statistic": "median", "latency_ms": 1.0, "count": True}}, "summary.count = True must be"),
    ({"summary": {"statistic": "median", "latency_ms": 1.0, "p90_ms": math.inf}}, "summary.p90_ms = inf"),
    ({"summary": {"statistic": "median"}}, "summary.latency_ms is missing"),
    ({"summary": {"statistic": "median", "latency_ms": 1.0, "speed": 3}}, "summary.speed is not a field of a summary"),
    ({"summary": None}, "summary is missing: an ok cell reports a summary"),
    ({"status": "done"}, "status = 'done' must be one of ok, failed"),
    ({"status": FAILED}, "error is missing: a failed cell says why"),
    ({"threads": 0}, "threads = 0 must be a whole number >= 1"),
    ({"load_ms": 0.0}, "load_ms = 0.0 must be a finite number > 0"),
    ({"contention": [1.5]}, "contention[0] = 1.5 must be a finite number >= 0 and <= 1"),
    ({"flags": ["ok", 3]}, "flags[1] = 3 must be text"),
    ({"rejected_rounds": [{"samples_ms": [-1.0]}]}, "rejected_rounds[0].samples_ms[0] = -1.0"),
    ({"protocol": {"name": "quick", "max_s": -1.0}}, "protocol.max_s = -1.0 must be a number >= 0, or null for no cap"),
    ({"protocol": {"name": "quick", "statistic": "mode"}}, "protocol statistic 'mode' not one of"),
    ({"protocol": {"name": "quick", "min_rounds": 2.5}}, "protocol.min_rounds = 2.5 must be a whole number"),
    ({"protocol": "quick"}, "protocol = 'quick' must be an object"),
    ({"artifact": {**ARTIFACT, "input_shape": "1x3"}}, "artifact.input_shape = '1x3' must be a list"),
    ({"artifact": {k: v for k, v in ARTIFACT.items() if k != "sha256"}}, "artifact.sha256 is missing"),
    ({"env_key": {"device": "cpu", "runner": "onnxruntime", "threads": "2"}}, "env_key.threads = '2' must be"),
    ({"model_info": []}, "model_info = [] must be an object"),
    ({"model": ""}, "model = '' must not be empty"),
])
def test_invalid_values_are_refused_in_one_line(over, fragment):
    with pytest.raises(UserError) as e:
        ok_cell(**over)
    msg = str(e.value)
    assert fragment in msg and "\n" not in msg and msg.startswith("cell ")


def test_failed_and_imported_cells():
    failed = LatencyResult(model="mobileone_s0", device="cpu", runner="onnxruntime", status=FAILED,
                           error="RuntimeError: boom", error_stage="load", protocol=PRESETS["quick"])
    assert not failed.ok and failed.summary is None and failed.latency_ms is None
    # An imported number: an external protocol, a summary of aggregates with figures left out.
    imported = LatencyResult(model="mobileone_s0", device="iphone", runner="coreml-app", precision="fp16",
                             protocol={"name": "external", "statistic": "mean"},
                             summary={"statistic": "mean", "latency_ms": 1.2, "mean_ms": 1.2, "count": 100},
                             env_key={"device": "iphone", "runner": "coreml-app", "device_name": "iPhone 12"})
    assert imported.protocol == ExternalProtocol(statistic="mean") and imported.protocol.trim is None
    assert imported.to_dict()["protocol"] == {"name": "external", "statistic": "mean", "trim": None}


def test_summaries_with_figures_a_tool_does_not_give():
    from devices.android import summary_from  # benchmark_model's aggregates: no p90, no interval

    stats = SimpleNamespace(min_us=1171.0, median_us=None, avg_us=1885.74, std_us=0.0, max_us=3000.0, count=520)
    d, flags = summary_from(SimpleNamespace(inference=stats), PRESETS["paper"])
    s = Summary.from_dict(d, strict=True)
    assert s.latency_ms == pytest.approx(1.171) and s.p90_ms is None and s.ci_low_ms is None
    assert s.std_ms == 0.0  # a spread may be zero; latencies may not
    assert "trimmed_low_ms" not in s.to_dict()  # ModelBench-only figures are written only when given
    extras = Summary(statistic="trimmed_mean", latency_ms=2.5, trimmed_low_ms=2.4, trimmed_high_ms=2.6)
    assert extras.to_dict()["trimmed_low_ms"] == 2.4 and Summary.from_dict(extras.to_dict()) == extras


def test_unknown_and_missing_keys_from_a_file():
    d = ok_cell().to_dict()
    with pytest.raises(UserError, match=r"cell mobileone_s0\|cpu\|onnxruntime\|deploy: latency is not a field"):
        LatencyResult.from_dict({**d, "latency": 1.0})
    del d["summary"]["p90_ms"]
    LatencyResult.from_dict(d)  # in code a figure may be left out...
    with pytest.raises(UserError, match=r"summary\.p90_ms is missing"):
        LatencyResult.from_dict(d, strict=True)  # ...a file written by bench has every field
    with pytest.raises(UserError, match=r"cell \?\|cpu\|onnxruntime\|deploy: model is missing"):
        LatencyResult.from_dict({k: v for k, v in d.items() if k != "model"})


def test_free_form_data_holds_no_infinity():
    c = ok_cell(runner_info={"clock": math.inf, "nested": [math.nan, 1.0], "t": (1, 2)},
                artifact={**ARTIFACT, "metadata": {"rel_error": math.nan}})
    assert c.runner_info == {"clock": None, "nested": [None, 1.0], "t": [1, 2]}
    assert c.artifact.metadata == {"rel_error": None}
    json.dumps(c.to_dict(), allow_nan=False)


def test_comparability_key_is_built_in_one_place():
    measured = ComparabilityKey.of(ENV, "cpu", "onnxruntime", 4, "fp32", "onnxruntime")
    assert measured.runtime_version == "onnxruntime 1.31.1" and measured.cpu_model == "Test CPU"
    assert measured.os_version == "" and measured.gpu == ""  # a host's kernel build does not count
    gpu_env = {**ENV, "gpu": {"name": "NVIDIA H200"}, "libraries": {}}
    assert ComparabilityKey.of(gpu_env, "trt", "tensorrt", 1, "fp16", "tensorrt").runtime_version == "tensorrt ?"
    assert ComparabilityKey.of(gpu_env, "trt", "tensorrt", 1, "fp16", "tensorrt").gpu == "NVIDIA H200"
    assert ComparabilityKey.of(ENV, "x", "y", None, "fp32", None).runtime_version == ""
    phone = {"device_name": "iPhone 12", "os": {"system": "iOS", "version": "17.5"}, "compute_units": "ALL",
             "imported": {"format": "csv"}}
    key = ComparabilityKey.of(phone, "iphone", "coreml-app", None, "fp16", None)
    assert (key.device_name, key.os_version, key.compute_units, key.cpu_model) == ("iPhone 12", "17.5", "ALL", "")
    # the registry's key takes the runtime from the device's spec
    assert comparability_key(ENV, "torch", "torch", 2, "fp32") == ComparabilityKey.of(ENV, "torch", "torch", 2,
                                                                                      "fp32", "torch")
    assert comparability_key(ENV, "cpu", "onnxruntime", 2, "fp32").runtime_version.startswith("onnxruntime")
    assert ComparabilityKey.from_dict(key.to_dict(), strict=True) == key


def test_invalid_field_paths():
    e = InvalidField("latency_ms", "must be a finite number > 0", -1.0).within("summary")
    assert str(e) == "summary.latency_ms = -1.0 must be a finite number > 0"
    assert str(InvalidField("[2]", "is missing").within("rejected_rounds")) == "rejected_rounds[2] is missing"
    with pytest.raises(InvalidField, match="latency_ms = nan"):
        Summary(statistic="median", latency_ms=math.nan)


def test_numpy_numbers_are_numbers():
    import numpy as np

    c = ok_cell(samples_ms=[list(np.array([1.0, 1.1], dtype=np.float32))],
                summary={"statistic": "median", "latency_ms": np.float64(1.05), "count": np.int64(2)})
    assert c.samples_ms == [[1.0, pytest.approx(1.1)]] and type(c.summary.count) is int
    json.dumps(c.to_dict(), allow_nan=False)
    with pytest.raises(UserError, match=r"summary.count = .* must be a whole number"):
        ok_cell(summary={"statistic": "median", "latency_ms": 1.0, "count": np.float64(2.0)})
