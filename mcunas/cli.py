"""The `mcunas` command line: argument parsing only.

Each subcommand lives in a ``command`` module of its stage, which provides
``add_arguments(parser)`` and ``run(args) -> int``; the work itself is done by that stage's
Python API. User errors (:class:`mcunas.errors.McunasError`) print one message and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mcunas.errors import McunasError
from mcunas.secrets import redact

# subcommand -> (module holding add_arguments/run, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "boards": ("mcunas.estimators.command_boards", "list the board catalog"),
    "space": ("mcunas.spaces.command", "sample architectures, show op graphs, optimize a space's resolution and width"),
    "estimate": ("mcunas.estimators.command", "estimate SRAM, flash and latency of an architecture or .tflite"),
    "search": ("mcunas.search.command", "run a hardware-aware architecture search"),
    "export": ("mcunas.export.command", "export a model to int8 TFLite and a TFLM deployment bundle"),
    "validate": ("mcunas.export.command_validate", "run a .tflite in TFLite Micro: measured vs predicted"),
    "report": ("mcunas.report.command", "write the HTML Pareto report of one or more runs"),
    "espeak-dataset": ("mcunas.data.command_espeak", "write an offline keyword-spotting dataset spoken by espeak-ng"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Build the parser; only the chosen subcommand's module is imported (all of them for --help)."""
    parser = argparse.ArgumentParser(
        prog="mcunas", description="Hardware-aware neural architecture search for microcontrollers."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((arg for arg in (argv or []) if not arg.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if chosen == name:
            module = importlib.import_module(module_name)
            module.add_arguments(sub_parser)
            sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except McunasError as error:
        print(f"mcunas {args.command}: error: {redact(str(error))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mcunas {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`mcunas boards | head -1`): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
