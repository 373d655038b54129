"""--input-size and --batch (and bench.toml's suite.input_size / suite.batch): the zoo's models and the user's
are exported, timed and counted at that input, which every result and its comparability key record."""
import json

import pytest

from bench.cli import main


def test_a_suite_at_256_and_batch_2(tmp_path, capsys):
    rc = main(["run", "--device", "cpu,torch", "--models", "mobileone_mu0", "--input-size", "256", "--batch", "2",
               "--protocol", "quick", "--threads", "1", "--out", str(tmp_path / "runs"),
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
    cells = {c["device"]: c for c in json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["cells"]}
    assert all(c["status"] == "ok" for c in cells.values()), [c["error"] for c in cells.values()]
    assert cells["cpu"]["artifact"]["input_shape"] == [2, 3, 256, 256]
    assert cells["torch"]["model_info"]["input_size"] == [2, 3, 256, 256]
    assert {c["env_key"]["input_shape"] for c in cells.values()} == {"2x3x256x256"}
    capsys.readouterr()
    assert main(["models", "mobileone_mu0", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    # MACs follow the pixels and the batch: (256/224)^2 x 2 of the model's own count
    assert cells["cpu"]["model_info"]["macs_m"] == pytest.approx(row["macs_m"] * (256 / 224) ** 2 * 2, rel=0.01)


def test_the_default_keeps_the_paper_s_protocol_and_an_empty_key_field(tmp_path, capsys):
    rc = main(["run", "--device", "cpu", "--models", "mobileone_mu0", "--protocol", "quick", "--threads", "1",
               "--out", str(tmp_path / "runs"), "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0, capsys.readouterr().err
    (cell,) = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())["cells"]
    assert cell["artifact"]["input_shape"] == [1, 3, 224, 224] and cell["env_key"]["input_shape"] == ""


@pytest.mark.parametrize("flags, expected", [
    (["--input-size", "big"], "--input-size 'big' must be"),
    (["--input-size", "0"], "must be SIZE, HxW or CxHxW"),
    (["--batch", "0"], "batch = 0 must be a whole number from 1"),
    (["--batch", "two"], "--batch 'two' must be a whole number"),
])
def test_bad_sizes_are_one_line(flags, expected, tmp_path, capsys):
    rc = main(["run", "--models", "mobileone_mu0", *flags, "--out", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and expected in err and "Traceback" not in err


def test_bench_toml_sets_them_too(tmp_path, capsys):
    cfg = tmp_path / "bench.toml"
    cfg.write_text('[suite]\nmodels = "mobileone_mu0"\ninput_size = [3, 192, 160]\nbatch = 4\n')
    from bench.config import load_config

    suite = load_config(str(cfg))
    assert suite.input_size == (3, 192, 160) and suite.batch == 4
    cfg.write_text('[suite]\ninput_size = [192, 160]\n')
    assert main(["run", "--config", str(cfg)]) == 2
    assert "input_size" in capsys.readouterr().err
