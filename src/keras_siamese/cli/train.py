"""`siamese train`: train a model and write model.keras, training_plot.png, history.json, config.json."""

import argparse
import os
import sys
from pathlib import Path

from keras_siamese.atomic import file_version
from keras_siamese.cli._options import add_data_options, counted, image_size, random_seed
from keras_siamese.errors import SiameseError

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    # the registries and defaults live in the library; importing them pulls in Keras, which --help avoids
    # by reading them lazily only when this parser is built for a command that runs
    from keras_siamese.data.transform_classes import TRANSFORM_CLASSES
    from keras_siamese.losses.triplet import MINING
    from keras_siamese.models.towers import TOWERS
    from keras_siamese.registry import canonical
    from keras_siamese.training.config import RECIPES, SCHEDULES, VAL_SPLITS, default_value
    from keras_siamese.training.objectives import LOSSES

    def default(name):
        values = [default_value(name, recipe) for recipe in ("default", "seed")]
        return "default: {}; seed recipe: {}".format(*("off" if value is None else value for value in values))

    p = commands.add_parser("train", help="train a model", description=DESCRIPTION)
    add_data_options(p, stream=True)
    p.add_argument("--output", default="output", help="folder for the outputs (default: output)")
    p.add_argument("--resume", metavar="DIR",
                   help="continue the interrupted run whose --output was DIR from its last finished epoch "
                        "(every epoch end is checkpointed there), with its own settings and backend: only --quiet, "
                        "--max-pixels and the host flags may come with it")
    p.add_argument("--recipe", default="default", type=canonical, choices=list(RECIPES), help=RECIPES.describe())
    model = p.add_argument_group("model")
    model.add_argument("--tower", type=canonical, choices=list(TOWERS), help=TOWERS.describe())
    model.add_argument("--weights", help="imagenet: initialise an application tower with ImageNet weights "
                                         "(downloads them)")
    model.add_argument("--embedding-dim", type=int, help=default("embedding_dim"))
    model.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                       help="scale embeddings to unit length")
    model.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random shifts, rotations, zooms (default: on below 10,000 training images; off in the "
                            "seed recipe)")
    model.add_argument("--transform-classes", type=canonical, choices=list(TRANSFORM_CLASSES),
                       help="train each class's transformed images as further classes, which carries better to "
                            f"classes never trained on; {TRANSFORM_CLASSES.describe()}")
    model.add_argument("--image-size", type=image_size, help="resize images to SIZE or HEIGHTxWIDTH")
    model.add_argument("--channels", type=int, help="1 (grey) or 3 (colour)")
    loss = p.add_argument_group("loss")
    loss.add_argument("--loss", type=canonical, choices=list(LOSSES), help=LOSSES.describe())
    loss.add_argument("--unlabeled", metavar="FOLDER",
                      help="images without labels (any layout), e.g. of the classes you will verify: each is a class "
                           "of its own, its two augmented views a positive pair")
    loss.add_argument("--ssl-weight", type=float,
                      help="weight of the self-supervised term (two augmented views of each image are a positive "
                           "pair; SimCLR); default 1 with --unlabeled, else 0 (off)")
    loss.add_argument("--temperature", type=float, help=f"supcon temperature ({default('temperature')})")
    loss.add_argument("--margin", type=float, help=default("margin"))
    loss.add_argument("--pos-margin", type=float, help="in-batch: positives closer than this cost nothing")
    loss.add_argument("--mine-pos-above", dest="pos_bound", type=float,
                      help="in-batch hard mining: only positives farther than this")
    loss.add_argument("--mine-neg-below", dest="neg_bound", type=float,
                      help="in-batch hard mining: only negatives closer than this")
    loss.add_argument("--mining", type=canonical, choices=list(MINING), help=f"triplet: {MINING.describe()}")
    fit = p.add_argument_group("optimisation")
    fit.add_argument("--epochs", type=int,
                     help="default: round(sqrt(3.2e6 / training images)) in 3..100, transformed copies counted "
                          "(21 for mnist-sample); "
                          "seed recipe: 100")
    fit.add_argument("--batch-size", type=int,
                     help=f"pairs (pair losses) or images (in-batch losses); {default('batch_size')}")
    fit.add_argument("--images-per-class", type=int,
                     help=f"in-batch losses: images of each class per batch ({default('images_per_class')})")
    fit.add_argument("--learning-rate", type=float, help=default("learning_rate"))
    fit.add_argument("--schedule", type=canonical, choices=list(SCHEDULES), help=SCHEDULES.describe())
    fit.add_argument("--patience", type=int, help=f"early-stopping patience in epochs, 0: off ({default('patience')})")
    fit.add_argument("--val-fraction", type=float,
                     help=f"share of training images held out ({default('val_fraction')})")
    fit.add_argument("--val-split", type=canonical, choices=list(VAL_SPLITS), help=VAL_SPLITS.describe())
    fit.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                     help="bfloat16 compute (float16 on PyTorch)")
    fit.add_argument("--devices", type=int,
                     help="data-parallel training on N local devices: TensorFlow MirroredStrategy or JAX "
                          "DataParallel (GPUs; on a host without them, N virtual CPU devices); default 1")
    fit.add_argument("--seed", type=random_seed, help=f"fixes pairs, splits and initialisation ({default('seed')})")
    hosts = p.add_argument_group("several hosts (JAX; or KERAS_DISTRIBUTION_* variables, see docs/scale.md)")
    hosts.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, the same for every process")
    hosts.add_argument("--num-processes", type=int, help="processes in the run, one per host")
    hosts.add_argument("--process-id", type=int, help="this process's rank, 0 to --num-processes - 1; "
                                                      "process 0 writes the outputs")
    p.add_argument("--calibrate", help="threshold rule: accuracy (default), f1, or far=0.01; chosen on validation "
                                       "pairs (training pairs when the validation split is too small)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run, parser=p)
    return p


RESUME_FLAGS = ("help", "resume", "quiet", "max_pixels", "coordinator", "num_processes", "process_id")  # allowed


def run(args):
    from keras_siamese.training.config import TrainConfig
    from keras_siamese.training.trainer import resume, train

    settings = {name: value for name, value in vars(args).items()
                if name in TrainConfig.__dataclass_fields__ and name not in ("recipe", "data")}
    output = args.resume or args.output
    if args.resume:
        given = [action.option_strings[-1] for action in args.parser._actions if action.option_strings
                 and action.dest not in RESUME_FLAGS and getattr(args, action.dest) != action.default]
        if given:
            raise SiameseError(f"--resume continues the run with the settings it began with; drop "
                               f"{', '.join(given)}")
    if any(value is not None for value in (args.coordinator, args.num_processes, args.process_id)) \
            or os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES"):
        from keras_siamese.training.replicas import join_hosts

        join_hosts(args.coordinator, args.num_processes, args.process_id)
    checkpoint = Path(output) / "checkpoint.json"
    earlier = file_version(checkpoint)  # an older run's checkpoint, if any (replaced atomically when written)
    try:
        if args.resume:
            result = resume(args.resume, progress=not args.quiet)
        else:
            result = train(args.data, output=output, recipe=args.recipe, progress=not args.quiet, **settings)
    except KeyboardInterrupt:
        if checkpoint.is_file() and (args.resume or file_version(checkpoint) != earlier):
            print(f"the last finished epoch is saved; continue with: siamese train --resume {output}",
                  file=sys.stderr)
        elif checkpoint.is_file():  # this run had finished no epoch: the checkpoint is the earlier run's
            print(f"no epoch of this run finished; {output} still holds the earlier interrupted run "
                  f"(siamese train --resume {output} continues that one)", file=sys.stderr)
        raise
    if not result.paths:  # a process other than 0 of a run on several hosts: process 0 reports
        return
    figures = result.model.calibration
    epochs = counted(result.record["epochs_run"], "epoch")
    print(f"trained {epochs} in {result.seconds:.1f} s on {result.record['backend']}")
    print(f"threshold {result.model.threshold:.4f} (rule {figures['rule']} on the {figures['split']} pairs, where "
          f"accuracy is {figures['accuracy']:.4f})")
    for name, path in result.paths.items():
        print(f"{name:>8}: {path}")

