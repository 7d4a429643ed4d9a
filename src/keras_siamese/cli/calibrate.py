"""`siamese calibrate`: choose a model's decision threshold on labelled images and store it in the model."""

import os
import sys

from keras_siamese.cli._options import add_data_options, add_model_option

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    from keras_siamese.data.dataset import SPLIT_NAMES
    from keras_siamese.inference.calibration import FEATURES, RECENTER_DEFAULT

    p = commands.add_parser("calibrate", help="re-calibrate the stored threshold", description=DESCRIPTION)
    add_model_option(p)
    add_data_options(p, default=None, help_default="default: the model's training source", stream=True)
    p.add_argument("--split", choices=SPLIT_NAMES,
                   help="images to calibrate on (default: all images of a folder given with --data, else val)")
    p.add_argument("--rule", default="accuracy", help="accuracy (default), f1, or far=X for a target false-accept rate")
    p.add_argument("--recenter", nargs="?", const=RECENTER_DEFAULT, choices=FEATURES, metavar="FEATURES",
                   help="first measure embeddings from the mean embedding of these images: for classes the model "
                        "never trained on, where it spreads them apart. FEATURES: embedding (the model's; unit-length "
                        f"ones only) or pooled (the tower's features before its final projection, which keep more "
                        f"of what tells new classes apart); default {RECENTER_DEFAULT}")
    p.add_argument("--output", help="write the calibrated model here (default: replace --model, atomically; "
                                    "required with --recenter, and then another file than --model)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def run(args):
    from pathlib import Path

    from keras_siamese.atomic import exclusive
    from keras_siamese.data.sources import is_folder_source
    from keras_siamese.errors import SiameseError
    from keras_siamese.evaluation import default_source, evaluation_images, seen_in_training
    from keras_siamese.inference.calibration import calibrate_model, check_recenterable, recenter_model
    from keras_siamese.inference.model_io import MODEL_SUFFIXES, load_model, save_model
    from keras_siamese.metrics.verification import parse_rule
    from keras_siamese.outputs import check_output_file, check_outside

    parse_rule(args.rule)  # fail before any slow work
    same_file = args.output and Path(args.output).exists() and Path(args.model).exists() and \
        os.path.samefile(args.output, args.model)
    if args.recenter and (not args.output or same_file):
        raise SiameseError("--recenter makes a model for new classes: give it an --output other than --model (the "
                           "trained model stays the one for its own classes, and the galleries built with it)")
    output = check_output_file(args.output or args.model, MODEL_SUFFIXES, "--output" if args.output else "--model",
                               exact=True)
    if args.output and args.data:
        check_outside(output, args.data)  # before the lock below makes the output's folder
    if not Path(args.model).is_file():
        load_model(args.model)  # its one-line error, before the lock below makes the output's folder
    with exclusive(output, wait=0):  # a second calibrate of the same file is refused, not silently lost
        model = load_model(args.model)
        if args.output and not args.data:  # the data read: the model's training source
            check_outside(output, default_source(model)[0])
        if args.recenter == "embedding":
            check_recenterable(model)  # before any slow work
        split = args.split or ("all" if args.data and is_folder_source(args.data) else "val")
        images, source = evaluation_images(model, args.data, split, args.data_dir, progress=not args.quiet,
                                           stream=args.stream)
        previous = model.threshold
        if args.recenter:
            model = recenter_model(model, images.images, features=args.recenter)
        figures = calibrate_model(model, images, args.rule, split=split, source=source)
        path = save_model(model, output)
    before = "none" if previous is None else f"{previous:.4f}"
    if args.recenter:
        print(f"recentered on the mean {'pooled features' if args.recenter == 'pooled' else 'embedding'} of "
              f"{len(images)} images")
        classes = images.classes_present()
        seen = seen_in_training(model, classes).get("seen_classes", 0)
        if seen:
            print(f"siamese calibrate: note: {seen} of the {len(classes)} classes recentered on were "
                  "trained on; recentering is for new classes (it costs the trained ones a little)", file=sys.stderr)
    print(f"threshold {before} -> {model.threshold:.4f} ({figures['rule']} on {len(images)} images of {split}: "
          f"accuracy {figures['accuracy']:.4f}, false accepts {figures['false_accept_rate']:.4f})")
    print(f"model: {path}")
