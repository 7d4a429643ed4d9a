"""Argument types and options shared by several commands."""

import argparse


def positive_int(text):
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1; received {text}")
    return value


def non_negative_int(text):
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; received {text}")
    return value


def int_between(low, high):
    """An argparse type for integers in [low, high]."""

    def parse(text):
        value = _number(text, int)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}; received {text}")
        return value

    return parse


def random_seed(text):
    """A random seed: an integer from 0 to 2**32 - 1."""
    from keras_siamese.seeds import MAX_SEED

    return int_between(0, MAX_SEED)(text)


def positive_float(text):
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive; received {text}")
    return value


def image_size(text):
    """`28` or `28x32` (height x width)."""
    parts = text.lower().split("x")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected SIZE or HEIGHTxWIDTH; received {text}")
    try:
        sizes = tuple(positive_int(p) for p in parts)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive SIZE or HEIGHTxWIDTH; received {text}") from None
    return sizes * 2 if len(sizes) == 1 else sizes


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a{'n integer' if kind is int else ' number'}: {text}") from None


def add_data_options(parser, default="mnist-sample", help_default="default: mnist-sample", stream=False):
    """--data and --data-dir; with `stream`, --stream/--no-stream for commands that can leave a folder on disk."""
    parser.add_argument(
        "--data", default=default,
        help=f"mnist-sample (embedded), mnist, fashion-mnist, or a folder of class subfolders ({help_default})",
    )
    parser.add_argument("--data-dir", help="read mnist / fashion-mnist from this folder of the four IDX .gz files")
    if stream:
        parser.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                            help="read a folder's images from disk batch by batch, on background threads (default: "
                                 "when decoded they would take over 1 GB, or a quarter of the free memory)")



def add_model_option(parser):
    parser.add_argument("--model", required=True, help="a model file written by `siamese train` (model.keras)")


def counted(number, noun):
    """`counted(1, "image")` is "1 image", `counted(2, "image")` "2 images"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
