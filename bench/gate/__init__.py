"""The latency regression gate: verdicts on head/base latency ratios, from an interleaved A/B measured here or
from two stored result sets. See docs/regression-gate.md for the design (why A/B in one job, why
Hodges-Lehmann, why Bonferroni).

One module per job:

    verdict     ratio estimate -> PASS / FAIL / UNSTABLE; family-wise levels; a job's cells and exit code
    effects     the minimum effect of each model (--min-effect, --effects FILE)
    variants    what an A/B compares: git revisions, suite files, artifact folders
    interleave  the interleaved A B B A measurement of one cell
    ab          `bench ab`: variants -> every cell interleaved -> a report
    stored      `bench compare`: two stored result sets -> a report
    baselines   `bench baseline accept/list`
    calibrate   `bench calibrate`: A/A noise floor -> minimum effects
    render      terminal table, Markdown, JSON

The commands (bench/commands/gate.py) call one function each: `run_ab`, `compare_stored`, `run_calibration`,
`accept_baseline` / `list_baselines`.
"""
from bench.gate.ab import measure_variants, run_ab
from bench.gate.baselines import BASELINES_DIR, accept_baseline, list_baselines
from bench.gate.calibrate import calibrate, run_calibration
from bench.gate.effects import Effects, check_effect, load_effects
from bench.gate.stored import compare_sets, compare_stored, load_result_set
from bench.gate.variants import GATE_MODELS, Variant, VariantChoice
from bench.gate.verdict import (
    DEFAULT_ALPHA,
    ERROR,
    EXIT_FAIL,
    EXIT_PASS,
    EXIT_UNSTABLE,
    FAIL,
    PASS,
    SKIP,
    UNSTABLE,
    ABPlan,
    CellComparison,
    GateReport,
    verdict,
)

__all__ = [
    "ABPlan", "BASELINES_DIR", "CellComparison", "DEFAULT_ALPHA", "ERROR", "EXIT_FAIL", "EXIT_PASS",
    "EXIT_UNSTABLE", "Effects", "FAIL", "GATE_MODELS", "GateReport", "PASS", "SKIP", "UNSTABLE", "Variant",
    "VariantChoice", "accept_baseline", "calibrate", "check_effect", "compare_sets", "compare_stored",
    "list_baselines", "load_effects", "load_result_set", "measure_variants", "run_ab", "run_calibration",
    "verdict",
]
