"""Verdicts: from a head/base ratio estimate to PASS / FAIL / UNSTABLE, the family-wise level each interval is
taken at (Bonferroni over cells and looks), and a job's cells with its exit code. Pure: no I/O, no measuring.

See docs/regression-gate.md for why these rules (full-width UNSTABLE, Bonferroni rather than BH).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bench.core.errors import EXIT_FAIL, EXIT_OK, EXIT_UNSTABLE, UserError
from bench.stats import RatioEstimate, familywise_level, paired_ratio

PASS, FAIL, UNSTABLE, ERROR, SKIP = "PASS", "FAIL", "UNSTABLE", "ERROR", "SKIP"
EXIT_PASS = EXIT_OK  # the gate's exit codes are defined once, in bench/core/errors.py (FAIL 1, UNSTABLE 3)
DEFAULT_MIN_EFFECT = 0.05
DEFAULT_ALPHA = 0.05  # family-wise: the chance that a job with no real change fails
_SEVERITY = {ERROR: 0, FAIL: 1, UNSTABLE: 2, PASS: 3, SKIP: 4}


def verdict(est: RatioEstimate, min_effect: float) -> str:
    """FAIL: slower by more than the minimum effect, and the interval excludes 'no change'. UNSTABLE: the
    interval is wider than the minimum effect, so a regression of that size could hide in it. PASS otherwise.
    With the full-width rule the three cannot disagree: a ratio above 1 + effect with an interval narrower
    than the effect has its lower bound above 1, so nothing slower than the effect can PASS."""
    if est.ratio > 1 + min_effect and est.low > 1:
        return FAIL
    if not est.width <= min_effect:  # also catches an unbounded (inf) or undefined (nan) interval
        return UNSTABLE
    return PASS


def decide_pairs(log_ratios, level: float, min_effect: float, method: str) -> tuple[RatioEstimate, str]:
    """The ratio estimate of an A/B's per-pair log ratios at `level`, and its verdict."""
    est = paired_ratio(log_ratios, level, method)
    return est, verdict(est, min_effect)


def fmt_level(level: float | None) -> str:
    return "" if level is None else f"{level * 100:.4g}%"


@dataclass(frozen=True)
class ABPlan:
    """How many pairs of rounds an A/B measures: `min_pairs`, then `step` more per look while the interval is
    wider than the effect, up to `max_pairs`. Every look is a chance of a false FAIL, so the family-wise
    level is split over cells x looks (Bonferroni); fewer, larger steps keep each interval narrower."""

    min_pairs: int = 12
    max_pairs: int = 44
    step: int = 8
    ci: str = "hodges-lehmann"  # or "bootstrap"

    def __post_init__(self):
        if self.min_pairs < 2 or self.max_pairs < self.min_pairs or self.step < 1:
            raise UserError(f"rounds: need 2 <= --rounds ({self.min_pairs}) <= --max-rounds ({self.max_pairs}) "
                            f"and --step ({self.step}) >= 1")

    @property
    def looks(self) -> int:
        return 1 + math.ceil((self.max_pairs - self.min_pairs) / self.step)

    def level(self, alpha: float, cells: int) -> float:
        return familywise_level(alpha, max(1, cells) * self.looks)

    def correction(self, cells: int, level: float) -> str:
        return (f"Bonferroni over {max(1, cells)} cell(s) x {self.looks} look(s): each interval at "
                f"{fmt_level(level)}")


def stored_level(alpha: float, cells: int) -> tuple[float, str]:
    """The level of each interval of a stored comparison (one look per cell), and how it was set."""
    level = familywise_level(alpha, cells)
    return level, f"Bonferroni: each of {cells} intervals at {fmt_level(level)}"


@dataclass(frozen=True)
class CellComparison:
    model: str
    device: str
    runner: str
    form: str  # "deploy", or "deploy -> train" when the two sides differ
    threads: int | None
    verdict: str
    base_ms: float | None = None  # median of the side's per-round medians
    head_ms: float | None = None
    ratio: float | None = None  # head / base
    ci_low: float | None = None
    ci_high: float | None = None
    level: float | None = None
    method: str = ""
    min_effect: float = DEFAULT_MIN_EFFECT
    rounds: int = 0  # pairs of an A/B; the smaller side's rounds of a stored comparison
    advisory: bool = False  # environments differ (--force): shown, not counted in the exit code
    note: str = ""
    log_ratios: tuple[float, ...] = ()  # per pair (A/B only): the noise the calibration and evidence read

    @property
    def label(self) -> str:
        return f"{self.model} ({self.device}/{self.runner}, {self.form}, {self.threads or '?'}t)"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateReport:
    mode: str  # ab | compare | calibrate
    base: str  # where each side came from, for people
    head: str
    cells: tuple[CellComparison, ...]
    alpha: float
    correction: str  # how the per-cell level was set
    environment: str = ""  # CPU, threads, runtime: one line
    notes: tuple[str, ...] = ()
    seed: int | None = None

    @property
    def counted(self) -> list[CellComparison]:
        return [c for c in self.cells if not c.advisory]

    @property
    def exit_code(self) -> int:
        verdicts = {c.verdict for c in self.counted}
        if verdicts & {FAIL, ERROR}:
            return EXIT_FAIL
        if UNSTABLE in verdicts:
            return EXIT_UNSTABLE
        return EXIT_PASS

    @property
    def outcome(self) -> str:
        return {EXIT_FAIL: FAIL, EXIT_UNSTABLE: UNSTABLE, EXIT_PASS: PASS}[self.exit_code]

    def sorted_cells(self) -> list[CellComparison]:
        """Worst first: errors, then by ratio, slowest first."""
        def key(c: CellComparison):
            r = c.ratio if c.ratio is not None and math.isfinite(c.ratio) else -math.inf
            return (c.verdict != ERROR, -r, _SEVERITY.get(c.verdict, 9), c.model)
        return sorted(self.cells, key=key)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cells"] = [c.to_dict() for c in self.sorted_cells()]
        d["outcome"], d["exit_code"] = self.outcome, self.exit_code
        return d
