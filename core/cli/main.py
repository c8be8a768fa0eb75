"""`python -m core {train,evaluate,predict,batch,video,calibrate,export}`: the command line over the library.

One parser with a subcommand per job (each in its own module here, which imports the library
only when its command runs, so `--help` stays fast) and one handler for how every command ends:
expected problems (missing folder, no images, unreadable model, wrong format, a value a setting
refuses) end with one `error:` line on stderr and exit code 1 (or the code the command gives,
see `core.cli.errors`), Ctrl-C with `interrupted` and 130; never a traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings

from . import batch, evaluate, predict, train, video
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, CommandError

COMMANDS = ("train", "evaluate", "predict", "batch", "video", "calibrate", "export")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog or _program(), description="Gender and age detection.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    train.add_parser(sub)
    evaluate.add_parsers(sub)
    predict.add_parser(sub)
    batch.add_parser(sub)
    video.add_parser(sub)
    return parser


def _program() -> str:
    """How the user started us: `agegender` (the installed command) or `python -m core`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.endswith((".py", "__main__.py")) and name != "-c" else "python -m core"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    _stop_on_ctrl_c()
    warnings.simplefilter("ignore", DeprecationWarning)  # libraries' deprecations are not the user's business
    warnings.formatwarning = lambda message, *_args, **_kwargs: f"warning: {message}\n"
    from ..runs import ModelError

    try:
        return args.run(args)
    except CommandError as exc:
        return _fail(str(exc), exc.code)
    except (ModelError, ValueError, OSError) as exc:  # DatasetError and ImageError are ValueErrors
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _stop_on_ctrl_c() -> None:
    """Make SIGINT stop the command cleanly even when it was started with SIGINT ignored, as a
    shell without job control starts `cmd &` and passes down to everything it runs: the
    dashboard stops a training run with SIGINT, and a server started in the background would
    otherwise start runs that cannot be stopped. Only the main thread may set handlers."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
