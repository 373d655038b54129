"""A model whose output is NaN is recorded as failed, never timed as ok: on the torch device (which has no
export parity check to catch it) and on cpu."""
import json

import torch

from bench import zoo
from bench.cli import main


def test_nan_weights_fail_the_cell_with_a_clear_reason(tmp_path, capsys):
    model = zoo.create_model("mobileone_mu0", deploy=True)
    state = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in model.state_dict().items()}
    weights = tmp_path / "nan.pt"
    torch.save(state, weights)
    rc = main(["run", "--device", "torch", "--models", "mobileone_mu0", "--weights", str(weights),
               "--protocol", "quick", "--threads", "1", "--out", str(tmp_path / "runs"),
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err  # a failed cell is data: the suite itself ran
    (cell,) = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["cells"]
    assert cell["status"] == "failed" and cell["error_stage"] == "load"
    assert "output values are NaN or infinite" in cell["error"] and not cell["samples_ms"]


def test_the_summary_says_how_many_cells_are_trustworthy(tmp_path, capsys):
    from bench.progress import untrustworthy

    assert untrustworthy(["contended"]) and untrustworthy(["unstable:drift +9% over 8 rounds"])
    assert not untrustworthy(["rounds-redone:1", "precision-not-reached"])
    rc = main(["run", "--device", "cpu", "--models", "mobileone_mu0", "--protocol", "quick", "--threads", "1",
               "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")])
    out = capsys.readouterr().out
    assert rc == 0 and "of 1 measured cells trustworthy (not contended or unstable)" in out
