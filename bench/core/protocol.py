"""The measurement protocol: how long to warm up, how many rounds of how many inferences, which statistic,
and the presets that reproduce published protocols (see docs/measurement.md)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from bench.core.errors import UserError

# The statistics bench.stats can compute; the protocol names one of them.
STATISTICS = ("median", "min", "trimmed_mean", "p90_early_stop")


@dataclass(frozen=True)
class Protocol:
    name: str
    warmup_iters: int = 10  # at least this many warm-up inferences...
    warmup_s: float = 1.0  # ...and at least this long
    min_rounds: int = 5
    max_rounds: int = 30
    round_min_iters: int = 5
    round_min_s: float = 0.25
    round_max_s: float = 2.5
    round_max_iters: int | None = None  # fixed-size rounds (paper, modelbench)
    round_warmup_iters: int = 0  # untimed inferences at the start of each round (modelbench: 1)
    target_rel_ci: float | None = 0.02  # stop when the 95% CI half-width is within this fraction
    max_s: float = math.inf  # no round is started after this long (warm-up included), once min_rounds are done
    statistic: str = "median"
    trim: int = 0  # per round, drop this many lowest and highest (modelbench: 10)
    reload_each_round: bool = False
    min_total_iters: int = 0  # mlperf: 1024 queries
    min_total_s: float = 0.0  # mlperf: 60 s
    # Other processes' share of our CPUs above which a round is redone; None: from the threads the round uses
    # and the CPUs it may run on (bench.measure.contention_threshold).
    contention_threshold: float | None = None
    contention_retries: int = 2
    contention_wait_s: float = 1.0  # the first wait for quiet; each further wait doubles
    contention_budget_s: float = 10.0  # the most a cell waits for quiet in all (then it is kept, flagged)
    # The run-to-run spread (relative sd) one run cannot see: a new session, memory placement, the machine's
    # state minutes later. The reported 95% CI adds it in quadrature to the interval of the run's own rounds;
    # the stopping rule judges only the latter (no number of rounds can shrink this part).
    between_runs_rel: float = 0.0

    def __post_init__(self):
        if self.statistic not in STATISTICS:
            raise ValueError(f"statistic {self.statistic!r} not one of {STATISTICS}")
        if not self.max_s > 0:  # also refuses NaN, which would silently turn the cap off
            raise ValueError(f"max_s must be a positive number of seconds (inf: no time cap), not {self.max_s}")
        if not 0.0 <= self.between_runs_rel < 1.0:  # also refuses NaN
            raise ValueError(f"between_runs_rel must be a relative spread in [0, 1), not {self.between_runs_rel}")
        if not 1 <= self.min_rounds <= self.max_rounds:
            raise ValueError(f"rounds: need 1 <= min_rounds ({self.min_rounds}) <= max_rounds ({self.max_rounds})")

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> dict:
        """The settings as strict JSON values, as results files (schema 2) hold them: an infinite cap is null."""
        return settings_to_json(self.to_dict())

    @classmethod
    def from_json(cls, settings: dict) -> "Protocol":
        """The inverse of to_json: null in a cap means no cap (math.inf)."""
        return cls(**settings_from_json(settings))


# Settings that are plain floats (seconds, shares), where math.inf means "no cap" (max_s, round_max_s). JSON
# has no infinity, so results files write them as null; None is no legal value of theirs otherwise.
UNCAPPED_AS_NULL = tuple(f.name for f in fields(Protocol) if f.type == "float")


def settings_to_json(settings: dict) -> dict:
    """Protocol settings, all or some (a suite's protocol_overrides), with an infinite cap written as null."""
    return {k: None if k in UNCAPPED_AS_NULL and isinstance(v, float) and v == math.inf else v
            for k, v in settings.items()}


def settings_from_json(settings: dict) -> dict:
    """The inverse of settings_to_json: null in a cap reads as math.inf."""
    return {k: math.inf if k in UNCAPPED_AS_NULL and v is None else v for k, v in settings.items()}


PRESETS: dict[str, Protocol] = {
    # between_runs_rel: the run-to-run spread benchmarks/honesty.py measured on the development VM (3.3% one
    # cell after another, 2.1% interleaved), with a margin; README has the coverage it gives.
    "default": Protocol("default", max_s=5.0, between_runs_rel=0.04),
    "quick": Protocol("quick", warmup_iters=2, warmup_s=0.05, min_rounds=3, max_rounds=3, round_min_iters=3,
                      round_min_s=0.05, round_max_s=0.5, target_rel_ci=None, contention_retries=0),
    # The paper's mobile protocol: 1 warm-up, 1000 runs, the minimum (kept as 10 rounds of 100 for the CI).
    "paper": Protocol("paper", warmup_iters=1, warmup_s=0.0, min_rounds=10, max_rounds=10, round_min_iters=100,
                      round_max_iters=100, round_min_s=0.0, round_max_s=math.inf, target_rel_ci=None,
                      statistic="min"),
    # ModelBench: 20 rounds x 50, model reloaded and 1 warm-up per round, trim 10 + 10, mean of round means.
    "modelbench": Protocol("modelbench", warmup_iters=0, warmup_s=0.0, min_rounds=20, max_rounds=20,
                           round_min_iters=50, round_max_iters=50, round_warmup_iters=1, round_min_s=0.0,
                           round_max_s=math.inf, target_rel_ci=None, statistic="trimmed_mean", trim=10,
                           reload_each_round=True),
    # MLPerf SingleStream: >= 1024 queries and >= 60 s, p90 under binomial early stopping (99% bound).
    "mlperf": Protocol("mlperf", min_rounds=1, max_rounds=100000, round_min_iters=64, round_min_s=1.0,
                       round_max_s=5.0, target_rel_ci=None, statistic="p90_early_stop", min_total_iters=1024,
                       min_total_s=60.0),
}
# On GPUs the paper reports the median of 100 runs.
GPU_PAPER = replace(PRESETS["paper"], min_rounds=5, max_rounds=5, round_min_iters=20, round_max_iters=20,
                    statistic="median", warmup_s=0.2)


def get_protocol(name: str, device_kind: str = "cpu", **overrides) -> Protocol:
    if name not in PRESETS:
        raise UserError(f"unknown protocol {name!r}; known protocols: {', '.join(PRESETS)}")
    proto = GPU_PAPER if (name == "paper" and device_kind == "gpu") else PRESETS[name]
    try:
        return replace(proto, **overrides) if overrides else proto
    except (TypeError, ValueError) as e:
        raise UserError(f"protocol {name}: {e}") from None


