"""`bench ab`, `bench compare`, `bench calibrate`, `bench baseline`: the latency regression gate (bench/gate/).

Each handler turns its flags into values, calls one function of bench.gate, and prints. Exit codes of ab and
compare: 0 every cell PASS, 1 a FAIL (or a head that could not be measured), 3 an UNSTABLE and no FAIL,
2 bad input.
"""
from __future__ import annotations

import sys
from pathlib import Path

from bench import gate
from bench.commands import print_json
from bench.config import load_config, parse_option_flags
from bench.console import print_table
from bench.core.errors import UserError
from bench.gate.render import baseline_rows, calibration_rows, check_outputs, print_report, write_outputs


def _fraction(text: str) -> float:
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise UserError(f"{text!r} is not a fraction; write 0.05 or 5%") from None
    return gate.check_effect(value, text)


def _positive_int(text: str, flag: str) -> int:
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise UserError(f"{flag} {text!r} must be a whole number >= 1")
    return value


def _threads(text: str | None) -> int | None:
    if text is None or text == "auto":
        return None
    return _positive_int(text, "--threads")


def _alpha(text: str) -> float:
    try:
        a = float(text)
    except ValueError:
        a = -1.0
    if not 0 < a < 1:
        raise UserError(f"--alpha {text!r} must be a fraction between 0 and 1 (0.05 = at most 5% false alarms per job)")
    return a


def _plan(args) -> gate.ABPlan:
    rounds = _positive_int(args.rounds, "--rounds")
    cap = _positive_int(args.max_rounds, "--max-rounds") if args.max_rounds else max(rounds, gate.ABPlan().max_pairs)
    return gate.ABPlan(min_pairs=rounds, max_pairs=cap, step=_positive_int(args.step, "--step"), ci=args.ci)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _runs_dir(args):
    """Where run ids are looked up: the suite file's `out` (read only when needed: it costs a zoo import)."""
    return lambda: load_config(args.config).out_dir


def _finish(report: gate.GateReport, args) -> int:
    print_report(report)  # first: a report that cannot be written (exit 2) still shows its verdicts
    write_outputs(report, args.markdown, args.json_out)
    return report.exit_code


def cmd_ab(args) -> int:
    check_outputs(args.markdown, args.json_out)  # before minutes of exporting and measuring
    choice = gate.VariantChoice(args.base, args.head, args.base_config, args.head_config, args.base_artifacts,
                                args.head_artifacts)
    report = gate.run_ab(
        choice, device=args.device, models=args.models, threads=_threads(args.threads),
        options=parse_option_flags(args.option), protocol=args.protocol, plan=_plan(args), effects=args.effects,
        min_effect=_fraction(args.min_effect) if args.min_effect else None, alpha=_alpha(args.alpha),
        seed=args.seed, cache_dir=args.cache_dir, repo=args.repo, config=args.config, log=_log)
    return _finish(report, args)


def cmd_compare(args) -> int:
    check_outputs(args.markdown, args.json_out)
    report = gate.compare_stored(
        args.base, args.new, _runs_dir(args), baselines_dir=args.baselines, models=args.models,
        effects=args.effects, min_effect=_fraction(args.min_effect) if args.min_effect else None,
        alpha=_alpha(args.alpha), force=args.force)
    return _finish(report, args)


def cmd_calibrate(args) -> int:
    pairs, repeats = _positive_int(args.pairs, "--pairs"), _positive_int(args.repeats, "--repeats")
    data, out = gate.run_calibration(
        config=args.config, models=args.models, device=args.device, threads=_threads(args.threads),
        protocol=args.protocol, pairs=pairs, repeats=repeats, alpha=_alpha(args.alpha), floor=_fraction(args.floor),
        seed=args.seed, cache_dir=args.cache_dir, out=args.out, log=_log)
    headers, rows = calibration_rows(data)
    print_table(headers, rows,
                title=f"A/A calibration: {data['device']}, {data['threads']} thread(s), {pairs} pairs x {repeats}",
                footnotes=[f"saved {out}; use it with `bench ab --effects {out}`"])
    return 0


def cmd_baseline(args) -> int:
    folder = Path(args.dir or gate.BASELINES_DIR)
    if args.action == "accept":
        if not args.run:
            raise UserError("bench baseline accept needs a RUN (a path, a run id, or 'latest')")
        dst = gate.accept_baseline(args.run, _runs_dir(args), folder, args.name, args.force)
        print(f"accepted {args.run} as baseline {dst}")
        return 0
    rows = gate.list_baselines(folder)
    if args.json:
        print_json(rows)
        return 0
    headers, table = baseline_rows(rows)
    print_table(headers, table, title=f"baselines in {folder}")
    return 0


def _verdict_arguments(p) -> None:
    p.add_argument("--min-effect", metavar="FRACTION",
                   help="smallest slowdown that fails the gate, e.g. 0.05 or 5%% (default 5%%)")
    p.add_argument("--effects", metavar="FILE", help="per-model minimum effects (JSON from `bench calibrate`)")
    p.add_argument("--alpha", default="0.05", metavar="P",
                   help="at most this chance of a false FAIL per job, over all cells (Bonferroni; default 0.05)")
    p.add_argument("--models", metavar="PATTERN", help="names, wildcards or comma-separated list")
    p.add_argument("--markdown", metavar="FILE", help="also write a pull-request summary in Markdown")
    p.add_argument("--json", dest="json_out", metavar="FILE", help="also write the verdicts as JSON")
    p.add_argument("--config", metavar="FILE", help="suite file (default: ./bench.toml if present)")


def register(sub) -> None:
    p = sub.add_parser("ab", help="time two versions of the same models here, rounds interleaved; gate on the ratio",
                       description="Measure two variants in one process, rounds interleaved A B B A with a random "
                       "start, and judge each model's head/base latency ratio. Exit 0 PASS, 1 FAIL, 3 UNSTABLE.")
    g = p.add_argument_group("variants (one pair)")
    g.add_argument("--base", metavar="REV", help="git revision to compare against (e.g. origin/main)")
    g.add_argument("--head", metavar="REV", help="git revision under test (default: the working tree as it is)")
    g.add_argument("--base-config", metavar="FILE", help="suite file of the base variant")
    g.add_argument("--head-config", metavar="FILE", help="suite file of the head variant")
    g.add_argument("--base-artifacts", metavar="DIR", help="folder written by `bench export --out DIR`")
    g.add_argument("--head-artifacts", metavar="DIR", help="folder written by `bench export --out DIR`")
    p.add_argument("--device", default="cpu", metavar="NAME", help="device both run on (default cpu)")
    p.add_argument("--threads", metavar="N", help="intra-op threads (default: the cores this process may use)")
    p.add_argument("--protocol", default="default", metavar="NAME",
                   help="shape of one round: default, quick, paper, ... (warm-up and iterations per round)")
    p.add_argument("--rounds", default="12", metavar="N", help="pairs of rounds before the first look (default 12)")
    p.add_argument("--max-rounds", metavar="N", help="cap on pairs while the interval is too wide (default 44)")
    p.add_argument("--step", default="8", metavar="N",
                   help="pairs added per look (default 8; each look costs a share of --alpha)")
    p.add_argument("--ci", choices=("hodges-lehmann", "bootstrap"), default="hodges-lehmann",
                   help="interval of the paired log ratio (default hodges-lehmann)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the random start (default: random, printed)")
    p.add_argument("--option", action="append", metavar="DEVICE.KEY=VALUE", help="a device option for both sides")
    p.add_argument("--cache-dir", metavar="DIR", help="artifact cache (default: a temporary folder per job)")
    p.add_argument("--repo", metavar="DIR", help="git repository of --base/--head (default: this checkout)")
    _verdict_arguments(p)
    p.set_defaults(func=cmd_ab)

    p = sub.add_parser("compare", help="verdicts between two stored result sets (runs, folders or baselines)",
                       description="Compare two stored result sets cell by cell (per-round medians, bootstrap "
                       "interval of the ratio of medians). Refuses cells from different environments unless --force. "
                       "Exit 0 PASS, 1 FAIL, 3 UNSTABLE.")
    p.add_argument("base", metavar="BASE", help="run file, folder, baseline name, run id or 'latest'")
    p.add_argument("new", metavar="NEW", help="run file, folder, baseline name, run id or 'latest'")
    p.add_argument("--force", action="store_true",
                   help="compare cells measured in different environments anyway (verdicts then advisory)")
    p.add_argument("--baselines", metavar="DIR", help="baselines folder (default results/baselines)")
    _verdict_arguments(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("calibrate", help="A/A on this machine: noise floor and a minimum effect per model",
                       description="Time each model against itself (two sessions, rounds interleaved) to measure "
                       "this machine's noise and suggest each model's minimum effect; writes JSON for "
                       "`bench ab --effects`.")
    p.add_argument("--models", metavar="PATTERN", help=f"models (default {gate.GATE_MODELS})")
    p.add_argument("--device", default="cpu", metavar="NAME", help="device (default cpu)")
    p.add_argument("--threads", metavar="N", help="intra-op threads (default: the cores this process may use)")
    p.add_argument("--protocol", default="default", metavar="NAME", help="shape of one round (default: default)")
    p.add_argument("--pairs", default="44", metavar="N",
                   help="pairs of rounds per A/A run (default 44, bench ab's cap)")
    p.add_argument("--repeats", default="3", metavar="N", help="A/A runs per model (default 3)")
    p.add_argument("--alpha", default="0.05", metavar="P", help="family-wise level the effects are sized for")
    p.add_argument("--floor", default="0.02", metavar="FRACTION", help="smallest effect ever suggested (default 2%%)")
    p.add_argument("--seed", type=int, metavar="N", help="seed of the random starts")
    p.add_argument("--config", metavar="FILE", help="suite file whose form, activation and device options to use")
    p.add_argument("--cache-dir", metavar="DIR", help="artifact cache")
    p.add_argument("--out", metavar="FILE",
                   help="where to write the JSON (default results/calibration/effects-<cpu>-t<threads>.json)")
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("baseline", help="accept a run as a baseline (results/baselines/), or list them")
    p.add_argument("action", choices=("accept", "list"))
    p.add_argument("run", nargs="?", metavar="RUN", help="accept: a run file, run id or 'latest'")
    p.add_argument("--name", metavar="NAME", help="baseline name (default: the run id)")
    p.add_argument("--force", action="store_true", help="replace a baseline of that name; accept an unfinished run")
    p.add_argument("--dir", metavar="DIR", help="baselines folder (default results/baselines)")
    p.add_argument("--config", metavar="FILE", help="suite file (its `out` is where run ids are looked up)")
    p.add_argument("--json", action="store_true", help="list: print JSON")
    p.set_defaults(func=cmd_baseline)
