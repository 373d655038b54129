"""Errors a user can fix: the CLI prints them as one line and exits 2, never with a traceback."""


class UserError(Exception):
    """Bad input: the message names the problem and the fix."""


class MissingBackendError(UserError):
    """An optional package or piece of hardware a device needs is absent."""


class ResultsMoved(Exception):
    """The run file could not be written where it belonged; everything measured is in a rescue file."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (what CI systems and `timeout` send), handled like Ctrl-C: the run is saved as interrupted."""


# Exit codes of `bench` (docs: README, "Exit codes").
EXIT_OK = 0
EXIT_FAIL = 1  # the regression gate's FAIL
EXIT_USAGE = 2  # bad input: one line naming the problem and the fix
EXIT_UNSTABLE = 3  # the regression gate could not decide
EXIT_RESULTS_MOVED = 4  # results could not be written where asked; they were saved elsewhere (named)
EXIT_BUG = 70  # an internal error (EX_SOFTWARE): the traceback is printed; never mistaken for a FAIL
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM)
