"""The interleaved A/B measurement of one cell: both variants' runners loaded and warmed up in this process,
then pairs of rounds in A B B A order (random start) until the verdict settles or the plan's cap.

A round is `bench.measure.measure_round` over the variant's `InferRounds`: redone, like `bench run` does,
while other processes take more than the protocol's share of our cores (a busy spell that hits one round of
a pair and not the other would show up as a difference between the variants), with one untimed inference
first, since the other variant's session has just used the caches.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np

from bench.core.errors import UserError
from bench.core.protocol import Protocol
from bench.core.runner import RunnerOptions
from bench.gate.variants import Variant
from bench.gate.verdict import UNSTABLE, ABPlan, decide_pairs
from bench.measure import Clock, ContentionProbe, InferRounds, measure_round
from bench.stats import RatioEstimate, paired_log_ratios
from devices.registry import get_device, make_runner

BASE, HEAD = "base", "head"


def pair_order(pair: int, first: str) -> tuple[str, str]:
    """The two rounds of pair `pair`: (first, other) on even pairs, reversed on odd ones, so the sequence
    is A B B A A B B A ...: each variant runs first as often as second, and a drift that is linear over
    a block of two pairs hits both variants equally."""
    other = HEAD if first == BASE else BASE
    return (first, other) if pair % 2 == 0 else (other, first)


def abba_order(pairs: int, first: str) -> list[str]:
    """The whole schedule of `pairs` pairs as a flat list of variant labels."""
    return [v for k in range(pairs) for v in pair_order(k, first)]


@dataclass(frozen=True)
class RoundResult:
    samples_ms: tuple[float, ...]
    contention: float | None = None  # other processes' share of our cores during the accepted round
    redone: int = 0  # attempts thrown away because the machine was busy


@dataclass(frozen=True)
class Interleaved:
    """Everything an A/B of one cell measured, in the order it was measured."""

    first: str
    order: tuple[str, ...]
    base_rounds: tuple[tuple[float, ...], ...]
    head_rounds: tuple[tuple[float, ...], ...]
    contention: tuple[float | None, ...]  # per round, in `order`
    redone: int
    looks: int  # how many times the stopping rule was consulted
    wall_s: float

    @property
    def pairs(self) -> int:
        return len(self.base_rounds)

    @property
    def log_ratios(self) -> np.ndarray:
        return paired_log_ratios(list(self.base_rounds), list(self.head_rounds))


def interleave(measure_round: Callable[[str, int], RoundResult], first: str, min_pairs: int, max_pairs: int,
               step: int, settled: Callable[[np.ndarray], bool], clock: Callable[[], float] = time.monotonic,
               ) -> Interleaved:
    """Measure pairs of rounds in ABBA order until `settled(log_ratios)` says the answer is clear (looked at
    after `min_pairs` and then every `step` pairs) or `max_pairs` is reached. `measure_round(variant, pair)`
    times one round of one variant."""
    if first not in (BASE, HEAD):
        raise ValueError(f"first must be {BASE!r} or {HEAD!r}, not {first!r}")
    if not 1 <= min_pairs <= max_pairs or step < 1:
        raise ValueError(f"need 1 <= min_pairs ({min_pairs}) <= max_pairs ({max_pairs}) and step >= 1")

    t0 = clock()
    rounds: dict[str, list[tuple[float, ...]]] = {BASE: [], HEAD: []}
    order: list[str] = []
    contention: list[float | None] = []
    redone = looks = 0
    pair, target = 0, min_pairs
    while True:
        while pair < target:
            for variant in pair_order(pair, first):
                r = measure_round(variant, pair)
                rounds[variant].append(tuple(r.samples_ms))
                order.append(variant)
                contention.append(r.contention)
                redone += r.redone
            pair += 1
        looks += 1
        if pair >= max_pairs or settled(paired_log_ratios(rounds[BASE], rounds[HEAD])):
            break
        target = min(max_pairs, pair + step)
    return Interleaved(first, tuple(order), tuple(rounds[BASE]), tuple(rounds[HEAD]), tuple(contention), redone,
                       looks, clock() - t0)


class RoundMeasurer:
    """One timed round of a variant's runner (`measure_round` over its `InferRounds`), for `interleave`."""

    def __init__(self, infers: dict[str, Callable[[], Any]], protocol: Protocol, probe: ContentionProbe | None,
                 clock: Clock = time.perf_counter_ns, sleep: Callable[[float], None] = time.sleep):
        # One untimed inference per round at least: the other variant's session has just used the caches.
        self.protocol = replace(protocol, round_warmup_iters=max(1, protocol.round_warmup_iters))
        self.rounds = {variant: InferRounds(infer, clock) for variant, infer in infers.items()}
        self.probe, self.sleep = probe, sleep

    def warm_up(self) -> None:
        """Each variant's warm-up, as the protocol says, before the first round."""
        for rounds in self.rounds.values():
            rounds.warm_up(self.protocol)

    def __call__(self, variant: str, pair: int) -> RoundResult:
        rounds = self.rounds[variant]
        out = measure_round(lambda: rounds.time_round(self.protocol), self.protocol, self.probe, self.sleep)
        return RoundResult(tuple(out.round.samples_ms), out.contention, len(out.rejected))


def measure_ab_cell(model: str, base: Variant, head: Variant, protocol: Protocol, plan: ABPlan, level: float,
                    min_effect: float, first: str) -> tuple[Interleaved, RatioEstimate, str]:
    """Load both sides' runners, warm both up, then interleave their rounds until the verdict settles."""
    device = get_device(base.device)
    probe = ContentionProbe(threads=base.threads) if device.contention_probe else None
    rb = make_runner(device.default_runner, RunnerOptions(threads=base.threads, extra=dict(base.options)))
    rh = make_runner(device.default_runner, RunnerOptions(threads=head.threads, extra=dict(head.options)))
    with rb, rh:
        if rb.self_timed or rh.self_timed:
            raise UserError(f"device {base.device} is measured by an outside tool, which bench ab cannot "
                            "interleave; run `bench run` on each version and use `bench compare`")
        rb.load(base.load_target(model))
        rh.load(head.load_target(model))
        rounds = RoundMeasurer({BASE: rb.infer, HEAD: rh.infer}, protocol, probe)
        rounds.warm_up()
        inter = interleave(rounds, first, plan.min_pairs, plan.max_pairs, plan.step,
                           lambda lr: decide_pairs(lr, level, min_effect, plan.ci)[1] != UNSTABLE)
    est, v = decide_pairs(inter.log_ratios, level, min_effect, plan.ci)
    return inter, est, v
