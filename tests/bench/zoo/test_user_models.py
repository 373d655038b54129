"""Models users bring: [models.NAME] tables (a Python factory, or an ONNX file), --model-file, and entry
points; each through bench models / export / run / table / plot, and every bad input of the issue."""
import json
import shutil
from importlib import metadata
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.zoo import registry
from bench.zoo import user as user_models

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "custom_model"


@pytest.fixture(autouse=True)
def clean_registry():
    yield
    registry._USER.clear()
    registry._entry_point_specs.cache_clear()


def suite(tmp_path: Path, models_toml: str, models="tiny") -> Path:
    shutil.copy(EXAMPLE / "models.py", tmp_path / "models.py")
    cfg = tmp_path / "bench.toml"
    cfg.write_text(f'[suite]\nmodels = "{models}"\nprotocol = "quick"\nthreads = 1\nout = "runs"\n'
                   f'cache = "cache"\n\n{models_toml}')
    return cfg


TINY = '[models.tiny]\nfactory = "models:build_tiny_resnet"\nkwargs = { width = 0.5 }\ndeploy = "fuse"\ntop1 = 60.0\n'


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_config_model_lists_with_its_origin_and_counts_follow_the_input_size(tmp_path, capsys):
    cfg = suite(tmp_path, TINY + '\n[models.tiny256]\nfactory = "models:build_tiny_resnet"\n'
                                 'kwargs = { width = 0.5 }\ninput_size = [3, 256, 256]\n')
    rc, out, err = run_cli(capsys, "models", "tiny*", "--config", str(cfg), "--json")
    assert rc == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["tiny"]["origin"] == f"config {cfg}" and rows["tiny"]["top1"] == 60.0
    assert rows["tiny"]["reparameterizable"] and rows["tiny256"]["input_size"] == [1, 3, 256, 256]
    # Params do not depend on the input size; MACs of a conv net grow with the pixels (global pooling head).
    assert rows["tiny256"]["params_m"] == pytest.approx(rows["tiny"]["params_m"], rel=0.01)
    assert rows["tiny256"]["macs_m"] == pytest.approx(rows["tiny"]["macs_m"] * (256 / 224) ** 2, rel=0.02)


@pytest.mark.slow
def test_a_config_model_runs_end_to_end_beside_the_zoo(tmp_path, capsys, monkeypatch):
    cfg = suite(tmp_path, TINY, models="tiny,mobileone_mu0")
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "export", "--device", "cpu", "--config", str(cfg), "--json")
    assert rc == 0, err
    rows = {r["model"]: r for r in json.loads(out)}
    assert rows["tiny"]["metadata"]["parity"]["passed"]
    rc, _, err = run_cli(capsys, "run", "--device", "cpu,torch", "--config", str(cfg))
    assert rc == 0, err
    run = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    cells = {(c["model"], c["device"]): c for c in run["cells"]}
    assert all(c["status"] == "ok" for c in cells.values()), [c["error"] for c in cells.values()]
    assert cells[("tiny", "cpu")]["model_info"]["origin"] == f"config {cfg}"
    registry._USER.clear()  # `bench table` in another process: the model is known only from its results
    rc, out, err = run_cli(capsys, "table", "--results", str(tmp_path / "runs"))
    assert rc == 0, err and "tiny" in out
    rc, out, err = run_cli(capsys, "plot", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "plots"))
    assert rc == 0, err
    assert list((tmp_path / "plots").glob("accuracy_vs_latency-cpu-*.png"))


def _onnx_file(tmp_path: Path, dynamic: dict | None = None, name="net.onnx") -> Path:
    import sys

    sys.path.insert(0, str(EXAMPLE))
    try:
        import models  # the example's own network
    finally:
        sys.path.remove(str(EXAMPLE))
    model = models.build_tiny_resnet(width=0.5).eval()
    path = tmp_path / name
    torch.onnx.export(model, (torch.randn(1, 3, 224, 224),), str(path), input_names=["image"],
                      output_names=["logits"], dynamic_axes=dynamic, dynamo=False)
    return path


def test_an_onnx_file_runs_on_cpu_and_fails_cleanly_where_pytorch_is_needed(tmp_path, capsys):
    onnx_path = _onnx_file(tmp_path, dynamic={"image": {0: "batch"}})  # a dynamic batch is fixed to 1
    rc, out, err = run_cli(capsys, "run", "--model-file", str(onnx_path), "--device", "cpu,torch",
                           "--protocol", "quick", "--threads", "1", "--out", str(tmp_path / "runs"),
                           "--cache-dir", str(tmp_path / "cache"))
    assert rc == 0, err
    run = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    cells = {c["device"]: c for c in run["cells"]}
    assert cells["cpu"]["status"] == "ok" and cells["cpu"]["model"] == "net"
    assert cells["cpu"]["artifact"]["input_shape"] == [1, 3, 224, 224]
    assert cells["torch"]["status"] == "failed" and cells["torch"]["error_stage"] == "export"
    assert "exists only as ONNX" in cells["torch"]["error"]
    # counts from the graph: the same network counted in PyTorch
    graph = user_models.UserModel("g", "test", onnx=str(onnx_path))
    counted = registry.user_spec(graph)
    from bench.zoo.complexity import complexity, onnx_complexity

    import sys
    sys.path.insert(0, str(EXAMPLE))
    import models
    sys.path.remove(str(EXAMPLE))
    ref = complexity(models.build_tiny_resnet(width=0.5).eval())
    got = onnx_complexity(Path(counted.onnx_path), (1, 3, 224, 224))
    assert got.macs == ref.macs
    assert abs(got.params - ref.params) <= 0.02 * ref.params  # BN's affine folded into the convs by the export


def through_every_command(capsys, tmp_path, model: str, *extra: str) -> dict:
    """bench models, export, run (quick), table and plot on one model; the run's cells by device."""
    common = ["--cache-dir", str(tmp_path / "cache")]
    rc, out, err = run_cli(capsys, "models", model, "--json", *extra)
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "export", "--device", "cpu", "--models", model, *extra, *common)
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "run", "--device", "cpu", "--models", model, "--protocol", "quick",
                           "--threads", "1", "--out", str(tmp_path / "runs"), *extra, *common)
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "table", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "t.md"))
    assert rc == 0 and model in out, err
    rc, out, err = run_cli(capsys, "plot", "--results", str(tmp_path / "runs"), "--out", str(tmp_path / "plots"))
    assert rc == 0, err
    cells = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["cells"]
    return {c["device"]: c for c in cells}


def test_an_onnx_file_through_every_command(tmp_path, capsys):
    onnx_path = _onnx_file(tmp_path, name="plain.onnx")
    cells = through_every_command(capsys, tmp_path, "plain", "--model-file", str(onnx_path))
    assert cells["cpu"]["status"] == "ok" and cells["cpu"]["model_info"]["origin"] == f"file {onnx_path}"


def test_an_entry_point_model_is_listed_with_its_origin(tmp_path, capsys, monkeypatch):
    shutil.copy(EXAMPLE / "models.py", tmp_path / "ep_models.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint("ep_tiny", "ep_models:build_tiny_resnet", user_models.ENTRY_POINT_GROUP)
    monkeypatch.setattr(user_models.metadata, "entry_points",
                        lambda group: [ep] if group == user_models.ENTRY_POINT_GROUP else [])
    registry._entry_point_specs.cache_clear()
    monkeypatch.chdir(tmp_path)
    rc, out, err = run_cli(capsys, "models", "ep_tiny", "--json")
    assert rc == 0, err
    (row,) = json.loads(out)
    assert row["origin"].startswith("entry point") and row["params_m"] > 0
    cells = through_every_command(capsys, tmp_path, "ep_tiny")
    assert cells["cpu"]["status"] == "ok" and cells["cpu"]["model_info"]["origin"].startswith("entry point")


BAD = {
    "factory not importable": ('[models.tiny]\nfactory = "nosuchmodule:build"\n', "cannot import 'nosuchmodule'"),
    "factory raises": ('[models.tiny]\nfactory = "models:build_tiny_resnet"\nkwargs = { width = \"wide\" }\n',
                       "raised"),
    "factory returns no module": ('[models.tiny]\nfactory = "json:dumps"\nkwargs = { obj = 1 }\n',
                                  "not a torch.nn.Module"),
    "kwargs that do not fit": ('[models.tiny]\nfactory = "models:build_tiny_resnet"\nkwargs = { depth = 3 }\n',
                               "do not fit"),
    "onnx file missing": ('[models.tiny]\nonnx = "missing.onnx"\n', "missing.onnx not found"),
    "both factory and onnx": ('[models.tiny]\nfactory = "models:x"\nonnx = "a.onnx"\n', "exactly one of"),
    "unknown key": ('[models.tiny]\nfactory = "models:build_tiny_resnet"\nwidth = 2\n', "width is not"),
    "bad input size": ('[models.tiny]\nfactory = "models:build_tiny_resnet"\ninput_size = [224, 224]\n',
                       "input_size"),
    "name clash with the zoo": ('[models.mobileone_s0]\nfactory = "models:build_tiny_resnet"\n', "clashes with"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_model_declarations_are_one_line_exit_2(case, tmp_path, capsys):
    toml, expected = BAD[case]
    cfg = suite(tmp_path, toml, models="all")
    for argv in (["models", "--config", str(cfg)], ["export", "--device", "cpu", "--config", str(cfg)]):
        rc, _, err = run_cli(capsys, *argv)
        assert rc == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        registry._USER.clear()


def test_bad_onnx_files_are_one_line(tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    rc, _, err = run_cli(capsys, "models", "--model-file", str(tmp_path / "junk.onnx"))
    assert rc == 2 and "is not a valid ONNX file" in err
    dyn = _onnx_file(tmp_path, dynamic={"image": {0: "batch", 2: "h", 3: "w"}}, name="dyn.onnx")
    rc, _, err = run_cli(capsys, "models", "--model-file", str(dyn))
    assert rc == 2 and "has a dynamic size" in err and "input_size" in err


def test_an_onnx_only_model_on_tflite_fails_its_cell_and_the_suite_goes_on(tmp_path, capsys):
    pytest.importorskip("litert_torch")
    onnx_path = _onnx_file(tmp_path)
    rc, _, err = run_cli(capsys, "run", "--model-file", str(onnx_path), "--models", "net,mobileone_mu0",
                         "--device", "tflite", "--protocol", "quick", "--threads", "1",
                         "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache"))
    assert rc == 0, err
    cells = {c["model"]: c for c in json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["cells"]}
    assert cells["net"]["status"] == "failed" and "exists only as ONNX" in cells["net"]["error"]
    assert cells["mobileone_mu0"]["status"] == "ok"
