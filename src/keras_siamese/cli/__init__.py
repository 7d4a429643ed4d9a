"""The `siamese` command: one module per subcommand, each a parser factory and a thin `run`."""

import argparse
import importlib.util
import os
import sys

from keras_siamese.cli import calibrate, compare, evaluate, pairs, samples, train
from keras_siamese.errors import SiameseError

COMMANDS = (train, evaluate, calibrate, compare, pairs, samples)


def build_parser():
    from keras_siamese import __version__

    parser = argparse.ArgumentParser(
        prog="siamese", description="Train, calibrate, evaluate and use Siamese image-similarity models."
    )
    parser.add_argument("--version", action="version", version=f"keras-siamese {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def import_backend_quietly():
    """Import Keras and its backend with stderr closed: TensorFlow's C++ start-up notices cannot be
    silenced otherwise and bury the command's own output. Errors are re-raised once stderr is back."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(null, 2)
    try:
        import keras  # noqa: F401

        if importlib.util.find_spec("tensorflow"):  # keras.utils.set_random_seed imports it on every backend
            import tensorflow as tf

            tf.config.list_physical_devices()  # device discovery prints too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def main(argv=None):
    """Entry point: parse, run one command, and turn input errors into one line and exit status 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        import_backend_quietly()
        args.run(args)
    except SiameseError as error:
        print(f"siamese {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"siamese {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"siamese {args.command}: error: {where}{error.strerror or error}", file=sys.stderr)
        return 1
    return 0
