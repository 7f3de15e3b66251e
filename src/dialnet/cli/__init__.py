"""The ``dialnet`` command.

Each sub-command lives in ``dialnet/cli/<name>.py`` with ``HELP``
(one line), ``add_arguments(parser)`` and ``run(args)``. Those modules
import only argparse at the top; numpy and everything heavy is imported in
``run``, so ``dialnet --help`` starts fast.

Errors: one path for all of them. A ``DialnetError`` and an argparse
error (unknown option, ``--epochs abc``, a missing argument) are printed
on one line plus a ``hint:`` line and the exit code is 2; a bug in
dialnet says so ("internal error") and exits 1; a traceback appears only
with ``--debug``. Ctrl-C during training exits 130, SIGTERM 143 (both
after writing the checkpoint, when there is one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

from ._shared import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED  # noqa: F401  (it imports only the standard library)

# name -> module under dialnet.cli (kept in the order `--help` lists them)
COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "predict": "predict",
    "summary": "summary",
    "gradcheck": "gradcheck",
    "inspect": "inspect",
    "doctor": "doctor",
    "plot": "plot",
    "export": "export",
    "explore": "explore",
}



class UsageError(Exception):
    """What argparse found wrong with the command line (an unknown option, ``--epochs abc``, a missing argument)."""

    def __init__(self, message, prog):
        super().__init__(message)
        self.prog = prog


class Parser(argparse.ArgumentParser):
    """argparse, with its errors sent through the one error path of :func:`main` (one line, a hint, exit 2).

    A row of numbers that starts with a minus (``dialnet predict m "-1.5,2,0.3"``)
    is a value, not an unknown option, as a lone negative number already is.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+|\d*\.\d+)([eE][-+]?\d+)?([,;\s].*)?$")

    def error(self, message):
        raise UsageError(message, self.prog)


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__  # noqa: PLC0415  (no numpy: --version stays instant)

    parser = Parser(
        prog="dialnet",
        description="Train and understand fully connected neural networks by backpropagation.",
        epilog="Run `dialnet COMMAND --help` for a command's options. With no DATA, `dialnet train` "
        "trains the articles' 625-20-20-10 network on bundled handwritten digits.",
    )
    parser.add_argument("--version", action="version", version=f"dialnet {__version__}")
    parser.add_argument("--debug", action="store_true", help="show a full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(f"dialnet.cli.{module_name}")
        except ModuleNotFoundError:
            continue  # a command still being written: leave it out of the CLI
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show a full traceback on errors")
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def report_error(exc) -> None:
    """Print a DialnetError as one line plus a hint, to stderr."""
    fix = getattr(exc, "fix", None)
    text = str(exc)
    if fix and text.endswith(f". Fix: {fix}"):
        text = text[: -len(f". Fix: {fix}")]
    print(f"dialnet: error: {text}", file=sys.stderr)
    if fix:
        print(f"  hint: {fix}", file=sys.stderr)


def _usage_hint(exc, argv):
    """The hint for an argparse error: the command's --help (the command named on the line, if any)."""
    prog = exc.prog
    if prog == "dialnet":
        command = next((a for a in argv if a in COMMANDS), None)
        prog = f"dialnet {command}" if command else prog
    return f"run `{prog} --help` for the options and the values they take"


class Terminated(KeyboardInterrupt):
    """SIGTERM outside a training step (a scheduler, `docker stop`): unwind like Ctrl-C, so locks and temp files go."""


def _on_sigterm(signum, frame):
    raise Terminated("terminated (SIGTERM)")


def main(argv=None) -> int:
    import signal  # noqa: PLC0415
    import threading  # noqa: PLC0415

    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return _main(argv)
        finally:
            signal.signal(signal.SIGTERM, previous)
    return _main(argv)


def _main(argv=None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"dialnet: error: {' '.join(str(exc).split())}", file=sys.stderr)
        print(f"  hint: {_usage_hint(exc, argv)}", file=sys.stderr)
        return EXIT_ERROR
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return EXIT_ERROR
    debug = getattr(args, "debug", False)
    from ..errors import DialnetError  # noqa: PLC0415

    try:
        code = args._run(args)
        return 0 if code is None else int(code)
    except DialnetError as exc:
        if debug:
            raise
        report_error(exc)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        if debug:
            raise
        if isinstance(exc, Terminated):
            print("dialnet: terminated (SIGTERM)", file=sys.stderr)
            return EXIT_TERMINATED
        detail = str(exc)  # TrainingInterrupted says where the checkpoint is and how to resume
        print(f"dialnet: interrupted{': ' + detail if detail else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into `head` and the reader left: not an error
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (silence the flush at exit)
        except OSError:
            pass
        return 0
    except MemoryError:
        if debug:
            raise
        print("dialnet: error: out of memory", file=sys.stderr)
        print("  hint: use a smaller --batch-size or a smaller network (dialnet summary --layers shows what one needs)",
              file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug in dialnet, not the user's fault: still no traceback
        if debug:
            raise
        print(f"dialnet: internal error (a bug in dialnet, not in your input): {type(exc).__name__}: "
              f"{' '.join(str(exc).split())[:300]}", file=sys.stderr)
        print("  hint: run again with --debug for the traceback, and please report it", file=sys.stderr)
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
