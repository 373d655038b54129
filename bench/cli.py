"""The `bench` command: parse, call one function, print. User errors are one line and exit 2."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import traceback

from bench.commands import COMMAND_MODULES
from bench.core.errors import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_RESULTS_MOVED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    ResultsMoved,
    Terminated,
    UserError,
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit 2, like ours
        self.exit(EXIT_USAGE, f"bench: error: {message} (see `bench {self.prog.split()[-1]} --help`)\n"
                  if " " in self.prog else f"bench: error: {message} (see `bench --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bench", description="mobileone-bench: latency of mobile vision backbones, measured the same way on a CPU, an NVIDIA GPU, an iPhone and a Pixel.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    import importlib
    for module in COMMAND_MODULES:
        importlib.import_module(f"bench.commands.{module}").register(sub)
    return parser


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM (CI systems, `timeout`) ends a run as Ctrl-C does: status `interrupted`, a message, exit 143.
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ResultsMoved as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return EXIT_RESULTS_MOVED
    except KeyboardInterrupt as e:
        print("bench: interrupted; results measured so far are saved", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(e, Terminated) else EXIT_INTERRUPTED
    except Exception:  # a bug: show it whole, and exit with a code no gate verdict uses
        traceback.print_exc()
        print("bench: internal error (a bug in mobileone-bench; please report the traceback above)",
              file=sys.stderr)
        return EXIT_BUG
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
