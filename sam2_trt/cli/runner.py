"""How every `sam2-trt` subcommand ends: errors a user can fix print one line and exit with their code, Ctrl-C
and SIGTERM unwind (so temporary files are removed) and exit 130. Shared by `sam2-trt` (sam2_export/cli.py)
and `python -m engines`."""

from __future__ import annotations

import signal
import sys

from sam2_trt.core.errors import Sam2TrtError

EXIT_INTERRUPTED = 130


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_command(args) -> int:
    """Run `args.run(args)` (an argparse namespace with `command` and `run`); returns the exit code."""
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        return args.run(args)
    except Sam2TrtError as e:
        print(f"sam2-trt {args.command}: error: {e}", file=sys.stderr)
        return e.code
    except ValueError as e:  # a rejected prompt, image or option: the message says what to pass instead
        print(f"sam2-trt {args.command}: error: {e}", file=sys.stderr)
        return Sam2TrtError.code
    except KeyboardInterrupt:
        print(f"sam2-trt {args.command}: interrupted; nothing was left behind", file=sys.stderr)
        return EXIT_INTERRUPTED
