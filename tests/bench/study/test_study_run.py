"""A small real study (2 models, quick protocol, the real runtimes): stages, interrupt and resume, the report in
markdown and HTML with valid figures; and the paper-only report."""
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from bench.config import SuiteConfig
from bench.pipeline import SilentReporter
from bench.store import load_run
from bench.study import manifest as mf
from bench.study.study import paper_report, run_study

pytestmark = pytest.mark.slow
MODELS = "mobileone_s0,mobilenetv3_small_100"


class StopAfter(SilentReporter):
    """Ctrl-C after the first cell recorded in the stage that starts `at`-th."""

    def __init__(self, at: int):
        self.at, self.started = at, 0

    def run_started(self, path, cells):
        self.started += 1

    def cell_done(self, result):
        if self.started == self.at:
            raise KeyboardInterrupt


def images_of(page: str) -> list[str]:
    found = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "img":
                found.append(dict(attrs)["src"])

    P().feed(page)
    return found


def check_figures(out: Path, md: str, page: str) -> list[str]:
    imgs = images_of(page)
    for name in imgs:
        assert f"]({name})" in md
        with Image.open(out / name) as im:
            im.verify()
        with Image.open(out / name) as im:
            assert im.format == "PNG" and im.size[0] >= 400 and im.size[1] >= 150
    return imgs


def test_small_study_interrupted_resumed_and_reported(tmp_path):
    out = tmp_path / "study"
    base = SuiteConfig(devices=("cpu",), protocol="quick")
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the second stage, after one of its cells
        run_study(out, base, models=MODELS, command=["test"], reporter=StopAfter(2))
    m = mf.load(out)
    assert m.stage("table1").status == mf.COMPLETE
    second = m.stage("reparam")
    assert second.status == mf.INTERRUPTED and second.run
    partial = load_run(out / second.run)
    assert partial.status == "interrupted" and len(partial.cells) == 1
    table1 = (out / m.stage("table1").run).read_bytes()

    files = run_study(out, None, resume=True, command=["test"])
    m = mf.load(out)
    assert {s.status for s in m.stages} <= {mf.COMPLETE, mf.SKIPPED}
    assert (out / m.stage("table1").run).read_bytes() == table1  # a complete stage is not measured again
    resumed = load_run(out / m.stage("reparam").run)
    assert resumed.status == "complete" and resumed.run_id == partial.run_id
    assert resumed.cells[0].started == partial.cells[0].started  # the measured cell kept, not redone
    sweep = load_run(out / m.stage("sweep_1t").run)
    assert {(c.device, c.threads) for c in sweep.cells} == {("cpu", 1), ("torch", 1), ("torchscript", 1),
                                                                ("openvino", 1)}

    md, page = files.markdown.read_text(), files.html.read_text()
    for text in (md, page):
        assert "What reproduced, what did not" in text and "CPU configuration sweep" in text
        assert "ONNX Runtime, 1 thread, deploy" in text and "TorchScript, 2 threads, deploy" in text
        assert "OpenVINO, 1 thread, deploy" in text
        assert "not in reference data" in text
    assert "| MobileOne-S0 |" in md
    imgs = check_figures(out, md, page)
    assert "reparam_speedup.png" in imgs and "cost_fit_shares.png" in imgs
    assert json.loads((out / "study.json").read_text())["models"] == MODELS


def test_paper_report(tmp_path):
    files = paper_report(tmp_path, SuiteConfig())
    md, page = files.markdown.read_text(), files.html.read_text()
    assert "the paper's figures" in md and "Nothing was measured" in md
    assert "| MobileOne-S0 | 71.4 | 275 |" in md  # top-1 and MACs beside the paper's latencies
    assert "| MixNet-S |" in md and "not in reference data" in md
    assert "paper x86 CPU (its latencies) | 1" in md  # the fit of the paper's column, over its models
    imgs = check_figures(tmp_path, md, page)
    assert imgs == ["cost_fit_shares.png"]
    assert not (tmp_path / "runs").exists()
