"""One module per group of `bench` subcommands; each has `register(subparsers)` and thin handlers."""
import json

# In the order `bench --help` lists them.
COMMAND_MODULES = ["models", "run", "importing", "analysis", "gate", "study", "node"]


def print_json(obj) -> None:
    print(json.dumps(obj, indent=1, default=str))
