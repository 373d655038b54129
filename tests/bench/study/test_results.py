import math

import pandas as pd

from bench import zoo
from bench.analysis.costfit import fit_costs
from bench.study import results as R
from bench.study.plan import SweepConfig, shared_x86_models


def cell(model, device, form, threads, ms, flagged=False, status="ok", error=""):
    return {"stage": "s", "model": model, "device": device, "form": form, "threads": threads, "status": status,
            "latency_ms": ms if status == "ok" else math.nan, "ci_low_ms": None, "ci_high_ms": None,
            "flagged": flagged, "flags": "contended" if flagged else "", "error": error, "macs_m": None,
            "params_m": None}




def frame(rows):
    return pd.DataFrame(rows, columns=R.COLUMNS)


def test_lookup_takes_deploy_cell_for_a_model_with_nothing_to_fuse_and_prefers_clean_cells():
    cells = frame([cell("mobilenetv2_100", "torch", "deploy", 1, 5.0),
                   cell("mobileone_s0", "torch", "deploy", 1, 4.0),
                   cell("mobileone_s0", "torch", "train", 1, 9.0, flagged=True),
                   cell("mobileone_s0", "torch", "train", 1, 8.0),
                   cell("repvgg_a0", "cpu", "deploy", 2, 0, status="failed", error="ExportError: boom")])
    assert R.lookup(cells, "mobilenetv2_100", "torch", "train", 1).ms == 5.0
    assert R.lookup(cells, "mobileone_s0", "torch", "train", 1) == R.Value(8.0, False)
    assert R.lookup(cells, "mobileone_s0", "torch", "train", 2) is None
    failed = R.lookup(cells, "repvgg_a0", "cpu", "deploy", None)
    assert failed.ms is None and failed.error.startswith("ExportError")


def test_sweep_row_rank_agreement_and_fit_exclude_flagged_cells():
    models = shared_x86_models()
    paper = {m: R.paper_ms(m) for m in models}
    macs = {m: 100.0 + 10 * i for i, m in enumerate(models)}
    ops = {m: 50 + 7 * (i % 5) for i, m in enumerate(models)}
    rows = [cell(m, "cpu", "deploy", 1, 2 * paper[m]) for m in models[:-1]]
    rows.append(cell(models[-1], "cpu", "deploy", 1, 1e6, flagged=True))  # would break the ranking if counted
    cfg = SweepConfig("cpu", 1, "deploy")
    (row,) = R.sweep_rows(frame(rows), [cfg], models, macs, ops)
    assert row.n_measured == 19 and row.n_flagged == 1
    assert row.rho.n == 18 and math.isclose(row.rho.rho, 1.0)
    assert row.rho_all.n == 19
    assert math.isclose(row.median_ratio, 2.0)
    assert row.fit.n == 18
    assert R.best_sweep([row]) is row


def test_ablation_rows_relative_to_the_baseline_and_verdicts():
    cells = frame([cell("ablation_act_relu", "cpu", "deploy", 2, 10.0),
                   cell("ablation_act_dyrelu_a", "cpu", "deploy", 2, 15.0),
                   cell("ablation_act_gelu", "cpu", "deploy", 2, 12.0, flagged=True)])
    rows = R.ablation_rows(cells, ("cpu",), ["ablation_act_relu", "ablation_act_dyrelu_a", "ablation_act_gelu"],
                           "ablation_act_", "relu", 2)
    rel = {r.variant: r.relative for r in rows}
    assert rel == {"relu": 1.0, "dyrelu_a": 1.5, "gelu": 1.2}
    assert [r.flagged for r in rows] == [False, False, True]  # shown marked, never judged
    nan_fit = fit_costs([], [], [])
    out = R.verdicts([], nan_fit, [], [], rows, [], [])
    assert len(out) == 1 and out[0][0] is True and "dyrelu_a 1.50x" in out[0][1]


def test_reparam_verdict_uses_mobileone_models_only():
    cells = frame([cell("mobileone_s0", "cpu", "deploy", 2, 4.0), cell("mobileone_s0", "cpu", "train", 2, 10.0),
                   cell("repvgg_a0", "cpu", "deploy", 2, 4.0), cell("repvgg_a0", "cpu", "train", 2, 3.0)])
    rows = R.reparam_rows(cells, ("cpu",), ["mobileone_s0", "repvgg_a0"], 2)
    assert [r.speedup for r in rows] == [2.5, 0.75]
    (v,) = R.verdicts([], fit_costs([], [], []), [], rows, [], [], [])
    assert v[0] is True and "2.50x to 2.50x over 1 models" in v[1]


def test_pareto_check_names_the_model_that_beats_mobileone():
    assert zoo.resolve("mobilenetv3_large_100").top1 > zoo.resolve("mobileone_s0").top1
    cells = frame([cell("mobileone_s0", "cpu", "deploy", 2, 5.0),
                   cell("mobilenetv3_large_100", "cpu", "deploy", 2, 4.0)])
    (check,) = R.pareto_checks(cells, ("cpu",), ["mobileone_s0", "mobilenetv3_large_100"], 2)
    assert check.off_front == ("mobileone_s0",) and check.beaten_by == ("mobilenetv3_large_100",)


def test_a_train_configuration_needs_its_train_cells():
    models = ["mobilenetv2_100", "mobilenetv1_100", "mobilenetv3_small_100", "mobileone_s0", "mobileone_s1"]
    cells = frame([cell(m, "torch", "deploy", 1, 1.0 + i) for i, m in enumerate(models)])
    (row,) = R.sweep_rows(cells, [SweepConfig("torch", 1, "train")], models, {}, {})
    assert row.n_measured == 0 and math.isnan(row.rho_all.rho)
    cells = frame([cell(m, "torch", "deploy", 1, 1.0 + i) for i, m in enumerate(models)]
                  + [cell("mobileone_s0", "torch", "train", 1, 9.0)])
    (row,) = R.sweep_rows(cells, [SweepConfig("torch", 1, "train")], models, {}, {})
    assert row.n_measured == 4  # three baselines (one network) and S0's train cell; S1's is missing
