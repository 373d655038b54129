"""exporters/tensorrt.py: builder configuration, the engine's cache key, inspector JSON -> precision counts.
The build itself needs a GPU: see test_gpu_end_to_end.py."""
import importlib.util
import json

import pytest

from bench.core.errors import MissingBackendError, UserError
from exporters import tensorrt as trt_exp
from bench.core.artifact import ExportRequest
from exporters.base import cache_key

TRT10 = "10.9.0.34"


def req(**settings) -> ExportRequest:
    return ExportRequest("mobileone_s0", settings=tuple(settings.items()))


def test_default_is_fp16_at_opt_level_3():
    cfg = trt_exp.build_config(req(), TRT10)
    assert cfg == trt_exp.BuildConfig("fp16", 3, ("FP16",), (), "DETAILED")


def test_fp32_clears_tf32():
    cfg = trt_exp.build_config(req(precision="FP32", opt_level="5"), TRT10)
    assert (cfg.precision, cfg.opt_level, cfg.set_flags, cfg.clear_flags) == ("fp32", 5, (), ("TF32",))


@pytest.mark.parametrize("settings, match", [
    (dict(precision="int8"), "use one of fp16, fp32"),
    (dict(opt_level=7), "use 0..5"),
    (dict(opt_level=-1), "use 0..5"),
    (dict(opt_level="fast"), "use 0..5"),
    (dict(opt_level=2.5), "use 0..5"),
    (dict(opt_level=True), "use 0..5"),
])
def test_bad_settings_are_one_line_errors_with_the_fix(settings, match):
    with pytest.raises(UserError, match=match):
        trt_exp.build_config(req(**settings), TRT10)


def test_tensorrt_versions():
    """Fault 3: TensorRT 11 (no FP16 builder flag) was refused for fp16; it builds the fp16 ONNX strongly typed."""
    cfg11 = trt_exp.build_config(req(), "11.1.0.106")
    assert cfg11 == trt_exp.BuildConfig("fp16", 3, (), (), "DETAILED", strongly_typed=True, source="onnx_fp16")
    assert cfg11.build_path == "strongly-typed+fp16-onnx"
    assert trt_exp.build_config(req(), TRT10).build_path == "weakly-typed+fp16-flag"
    fp32 = trt_exp.build_config(req(precision="fp32"), "11.1.0.106")
    assert fp32.clear_flags == ("TF32",) and fp32.source == "onnx" and fp32.strongly_typed
    with pytest.raises(UserError, match="too old"):
        trt_exp.build_config(req(), "8.6.1")
    with pytest.raises(UserError, match=r"tensorrt>=10,<12"):
        trt_exp.build_config(req(), "12.0.0")


def test_engine_key_covers_gpu_compute_capability_tensorrt_and_onnx():
    base = trt_exp.engine_tool_versions(TRT10, "NVIDIA H100 80GB HBM3", "9.0", "a" * 64)
    variants = [
        trt_exp.engine_tool_versions(TRT10, "NVIDIA A100-SXM4-80GB", "9.0", "a" * 64),
        trt_exp.engine_tool_versions(TRT10, "NVIDIA H100 80GB HBM3", "8.0", "a" * 64),
        trt_exp.engine_tool_versions("10.8.0.43", "NVIDIA H100 80GB HBM3", "9.0", "a" * 64),
        trt_exp.engine_tool_versions(TRT10, "NVIDIA H100 80GB HBM3", "9.0", "b" * 64),
    ]
    key = cache_key("tensorrt", req(), base)
    assert key == cache_key("tensorrt", req(), dict(base))
    keys = {cache_key("tensorrt", req(), v) for v in variants}
    assert len(keys) == 4 and key not in keys
    assert cache_key("tensorrt", req(precision="fp32"), base) != key
    assert cache_key("tensorrt", req(opt_level=5), base) != key


def test_timing_cache_is_per_gpu_and_tensorrt_version(tmp_path):
    p = trt_exp.timing_cache_path(tmp_path, "NVIDIA H100 80GB HBM3", "9.0", TRT10)
    assert p == tmp_path / "tensorrt" / "timing-caches" / "nvidia-h100-80gb-hbm3-sm90-trt10.9.0.34.cache"
    others = {trt_exp.timing_cache_path(tmp_path, "NVIDIA H100 80GB HBM3", "9.0", "10.8.0.43"),
              trt_exp.timing_cache_path(tmp_path, "NVIDIA L4", "8.9", TRT10)}
    assert p not in others and len(others) == 2


@pytest.mark.parametrize("text, expected", [
    ("Row major linear FP32", "fp32"), ("Row major linear FP16 format", "fp16"),
    ("Channel major FP16 format where channel % 8 is padded", "fp16"), ("Half", "fp16"), ("Float", "fp32"),
    ("Thirty-two wide channel vectorized row major Int8 format.", "int8"), ("Row major linear BF16", "bf16"),
    ("Row major linear INT32", "int32"), ("N/A due to dynamic shapes", "unknown"),
])
def test_normalize_datatype(text, expected):
    assert trt_exp.normalize_datatype(text) == expected


def test_precision_counts_from_inspector_json(fixtures):
    info = (fixtures / "engine_inspector_fp16.json").read_text()
    counts = trt_exp.precision_counts(info)
    assert counts == {"compute": {"fp16": 4, "fp32": 1}, "reformat": {"fp16": 1, "fp32": 1}, "layers": 7,
                      "fp16_share": 0.8}
    assert trt_exp.precision_counts(json.loads(info)) == counts  # a parsed dict works too


def test_precision_counts_need_detailed_verbosity(fixtures):
    with pytest.raises(ValueError, match="DETAILED"):
        trt_exp.precision_counts((fixtures / "engine_inspector_names_only.json").read_text())
    with pytest.raises(ValueError, match="Layers"):
        trt_exp.precision_counts({"Bindings": []})


def test_layer_precision_of_mixed_outputs():
    layer = {"Outputs": [{"Format/Datatype": "Half"}, {"Format/Datatype": "Float"}]}
    assert trt_exp.layer_precision(layer) == "mixed"
    assert trt_exp.layer_precision({"Inputs": [{"Format/Datatype": "Half"}]}) == "fp16"
    assert trt_exp.layer_precision({}) == "unknown"


def test_dynamic_shapes_are_refused():
    trt_exp.check_static("input", (1, 3, 224, 224))
    with pytest.raises(UserError, match="static-shape"):
        trt_exp.check_static("input", (-1, 3, 224, 224))


def test_onnx_request_drops_only_our_settings():
    r = ExportRequest("mobileone_s1", activation="original", settings=(("precision", "fp32"), ("opset", 18),
                                                                          ("opt_level", 4)))
    o = trt_exp.onnx_request(r)
    assert o.settings == (("opset", 18),) and (o.model, o.activation) == ("mobileone_s1", "original")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_export_without_tensorrt_names_the_extra(tmp_path):
    with pytest.raises(MissingBackendError, match=r"mobileone-bench\[trt\]"):
        trt_exp.export(req(), tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-built left behind


# ------------------------------------------------ the builder's orchestration, over a stand-in tensorrt

def build_with(fake, cfg, tmp_path, cache_file):
    import sys

    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    engine = tmp_path / "out" / "model.engine"
    engine.parent.mkdir(exist_ok=True)
    sys.modules["tensorrt"] = fake
    try:
        return trt_exp.build_engine(onnx, engine, cfg, cache_file)
    finally:
        del sys.modules["tensorrt"]


def test_a_refused_timing_cache_is_replaced_not_fatal(tmp_path):
    """Fault 1: TensorRT refuses a cache made on another device (set_timing_cache returns False); the old
    code went on, get_timing_cache() was None and .serialize() raised after the engine was built, leaving
    the stale file for the next build to fail on again."""
    import fake_tensorrt

    fake = fake_tensorrt.make()
    cache_file = tmp_path / "t.cache"
    cache_file.write_bytes(fake_tensorrt.FOREIGN)
    meta = build_with(fake, trt_exp.build_config(req(), TRT10), tmp_path, cache_file)
    assert meta["timing_cache_status"].startswith("refused by TensorRT")
    assert [c for c in fake.calls if c[0] == "set_timing_cache"] == [("set_timing_cache", False),
                                                                     ("set_timing_cache", True)]
    assert not cache_file.read_bytes().startswith(fake_tensorrt.FOREIGN)  # the stale file was replaced
    assert meta["timing_cache_bytes_after"] == len(cache_file.read_bytes())
    fake.calls.clear()
    again = build_with(fake, trt_exp.build_config(req(), TRT10), tmp_path, cache_file)
    assert again["timing_cache_status"] == "loaded" and again["timing_cache_bytes_before"] > 0


def test_a_cache_refused_even_fresh_builds_without_one(tmp_path):
    import fake_tensorrt

    fake = fake_tensorrt.make()
    cache_file = tmp_path / "t.cache"
    cache_file.write_bytes(fake_tensorrt.FOREIGN)
    make_cache = fake.Builder(None).create_builder_config().create_timing_cache
    orig = fake.Builder.create_builder_config

    def refusing(self):
        config = orig(self)
        config.create_timing_cache = lambda data: make_cache(fake_tensorrt.FOREIGN + bytes(data))
        return config

    fake.Builder.create_builder_config = refusing
    meta = build_with(fake, trt_exp.build_config(req(), TRT10), tmp_path, cache_file)
    assert "built without a timing cache" in meta["timing_cache_status"]
    assert meta["timing_cache_bytes_after"] is None and cache_file.read_bytes() == fake_tensorrt.FOREIGN


@pytest.mark.parametrize("version, flags_set, network_flags, path", [
    ("10.16.1.11", ["FP16"], 0, "weakly-typed+fp16-flag"),
    ("11.1.0.106", [], 1 << 0, "strongly-typed+fp16-onnx"),  # STRONGLY_TYPED is member 0 on 11
])
def test_both_majors_build_fp16_and_record_the_path(version, flags_set, network_flags, path, tmp_path):
    import fake_tensorrt

    fake = fake_tensorrt.make(version)
    meta = build_with(fake, trt_exp.build_config(req(), version), tmp_path, tmp_path / "t.cache")
    assert [c[1] for c in fake.calls if c[0] == "set_flag"] == flags_set
    assert ("create_network", network_flags) in fake.calls
    assert meta["build_path"] == path and meta["precision_counts"]["fp16_share"] == 0.8
    assert meta["timing_cache_status"] == "new" and (tmp_path / "t.cache").exists()


def test_the_fp16_flag_is_never_asked_of_tensorrt_11(tmp_path):
    """The old configuration (FP16 flag) on 11: one line naming the fix, not an AttributeError."""
    import fake_tensorrt

    with pytest.raises(UserError, match="has no BuilderFlag.FP16"):
        build_with(fake_tensorrt.make("11.1.0.106"), trt_exp.BuildConfig("fp16", 3, ("FP16",), ()), tmp_path,
                   tmp_path / "t.cache")


@pytest.mark.slow
def test_export_on_tensorrt_11_builds_the_parity_checked_fp16_onnx(tmp_path, monkeypatch):
    """The 11 path end to end but for the GPU: real fp32 and fp16 ONNX exports (parity checked), the stand-in
    builder; the artifact names the ONNX it was built from and the path taken."""
    import sys

    import fake_tensorrt
    from bench.env.gpu import GpuIdentity

    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt.make("11.1.0.106"))
    monkeypatch.setattr(trt_exp, "require", lambda *a: None)
    monkeypatch.setattr(trt_exp, "gpu_identity", lambda i: GpuIdentity("NVIDIA H200", "9.0"))
    art, hit = trt_exp.export(ExportRequest("mobileone_mu0"), tmp_path)
    meta = art.metadata
    assert not hit and meta["build_path"] == "strongly-typed+fp16-onnx" and meta["onnx_target"] == "onnx_fp16"
    assert meta["onnx_parity"]["cosine"] >= 0.999 and "/onnx_fp16/" in meta["onnx_path"]
    assert ("parse", "model.onnx") in sys.modules["tensorrt"].calls


def test_the_trt_extra_allows_tensorrt_10_and_11():
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    req = next(Requirement(r) for r in project["optional-dependencies"]["trt"] if r.startswith("tensorrt"))
    assert req.specifier.contains("10.16.1.11") and req.specifier.contains("11.1.0.106")
    assert not req.specifier.contains("9.3.0") and not req.specifier.contains("12.0.0")
