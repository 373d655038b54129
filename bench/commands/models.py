"""`bench models`: the zoo and the user's own models, with params, MACs, top-1 and where each comes from."""
from __future__ import annotations

from bench import zoo
from bench.commands import print_json
from bench.config import load_config
from bench.console import print_table
from bench.zoo import user


def cmd_models(args) -> int:
    load_config(args.config)  # registers the suite's own models ([models.NAME])
    if args.model_file:
        zoo.register_user_models(user.from_model_file(f) for f in args.model_file)
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
            "in_study": spec.in_study, "paper_latency_ms": dict(spec.paper_latency_ms), "origin": spec.origin,
            "input_size": list(spec.input_size),
        })
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["name", "paper name", "family", "params (M)", "MACs (M)", "top-1", "reparam", "activation swap", "input",
         "from"],
        [[r["name"], r["paper_name"], r["family"], f"{r['params_m']:.3f}", f"{r['macs_m']:.1f}",
          "" if r["top1"] is None else f"{r['top1']:.1f}", "yes" if r["reparameterizable"] else "",
          "H-swish -> ReLU" if r["activation_swap"] else "", "x".join(map(str, r["input_size"][1:])),
          r["origin"]] for r in rows],
        title=f"{len(rows)} models (deploy form; MACs = the paper's FLOPs)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model zoo with params, MACs and the paper's top-1")
    p.add_argument("pattern", nargs="?", default="all",
                   help="comma-separated names, paper names or wildcards; 'all' (default: every model but the ablation networks), 'study' (the 20 of the latency study), 'ablation', 'ablation_act', 'ablation_block' (Section 3's networks)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--config", metavar="FILE", help="suite file whose [models.NAME] to list too (default: "
                                                    "./bench.toml if present)")
    p.add_argument("--model-file", action="append", metavar="PATH.onnx", help="list an ONNX file too (repeatable)")
    p.set_defaults(func=cmd_models)
