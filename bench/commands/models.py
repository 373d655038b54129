"""`bench models`: the zoo with params, MACs and the paper's top-1."""
from __future__ import annotations

from bench import zoo
from bench.commands import print_json
from bench.console import print_table


def cmd_models(args) -> int:

    rows = []
    for name in zoo.list_models(args.pattern):
        spec = zoo.resolve(name)
        c = zoo.spec_complexity(name)
        rows.append({
            "name": spec.name, "paper_name": spec.paper_name, "family": spec.family,
            "params_m": round(c.params_m, 3), "macs_m": round(c.macs_m, 1), "top1": spec.top1,
            "reparameterizable": spec.reparameterizable,
            "activation_swap": "H-swish -> ReLU (SE gate keeps hard-sigmoid)" if spec.activation_swap else "",
            "reference_params_m": spec.reference_params_m, "reference_macs_m": spec.reference_macs_m,
            "in_study": spec.in_study, "paper_latency_ms": dict(spec.paper_latency_ms),
        })
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["name", "paper name", "family", "params (M)", "MACs (M)", "top-1", "reparam", "activation swap"],
        [[r["name"], r["paper_name"], r["family"], f"{r['params_m']:.3f}", f"{r['macs_m']:.1f}",
          "" if r["top1"] is None else f"{r['top1']:.1f}", "yes" if r["reparameterizable"] else "",
          "H-swish -> ReLU" if r["activation_swap"] else ""] for r in rows],
        title=f"{len(rows)} models (deploy form, 1x3x224x224; MACs = the paper's FLOPs)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo with params, MACs and the paper's top-1")
    p.add_argument("pattern", nargs="?", default="all",
                   help="comma-separated names, paper names or wildcards; 'all' (default) or 'study'")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_models)
