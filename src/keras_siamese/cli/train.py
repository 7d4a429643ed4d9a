"""`siamese train`: train a model and write model.keras, training_plot.png, history.json, config.json."""

import argparse

from keras_siamese.cli._options import (
    add_data_options,
    image_size,
    non_negative_int,
    positive_float,
    positive_int,
)

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    p = commands.add_parser("train", help="train a model", description=DESCRIPTION)
    add_data_options(p)
    p.add_argument("--output", default="output", help="folder for the outputs (default: output)")
    p.add_argument("--recipe", default="default", choices=["default", "seed"],
                   help="default: fast in-batch recipe; seed: the tutorial's exact settings")
    model = p.add_argument_group("model")
    model.add_argument("--tower", help="small (default), seed, mobilenet_v3_small, efficientnet_b0, resnet50_v2")
    model.add_argument("--weights", choices=["imagenet"],
                       help="initialise an application tower with ImageNet weights (downloads them)")
    model.add_argument("--embedding-dim", type=positive_int)
    model.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                       help="scale embeddings to unit length")
    model.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                       help="random shifts, rotations, zooms (default: on below 10,000 training images)")
    model.add_argument("--image-size", type=image_size, help="resize images to SIZE or HEIGHTxWIDTH")
    model.add_argument("--channels", type=int, choices=[1, 3], help="1 (grey) or 3 (colour)")
    loss = p.add_argument_group("loss")
    loss.add_argument("--loss", choices=["supcon", "in-batch", "triplet", "contrastive", "bce"],
                      help="supcon: supervised contrastive over the batch (default); in-batch: contrastive over "
                           "all pairs of the batch; triplet; contrastive: the seed's pairwise loss; bce")
    loss.add_argument("--temperature", type=positive_float, help="supcon temperature (default 0.1)")
    loss.add_argument("--margin", type=positive_float)
    loss.add_argument("--pos-margin", type=float, help="in-batch: positives closer than this cost nothing")
    loss.add_argument("--mine-pos-above", dest="pos_bound", type=float,
                      help="in-batch hard mining: only positives farther than this")
    loss.add_argument("--mine-neg-below", dest="neg_bound", type=float,
                      help="in-batch hard mining: only negatives closer than this")
    loss.add_argument("--mining", choices=["batch_hard", "semi_hard"], help="triplet mining")
    fit = p.add_argument_group("optimisation")
    fit.add_argument("--epochs", type=positive_int,
                     help="default: round(sqrt(3.2e6 / training images)) in 3..100 (30 for mnist-sample)")
    fit.add_argument("--batch-size", type=positive_int, help="pairs (pair losses) or images (in-batch losses)")
    fit.add_argument("--images-per-class", type=positive_int, help="in-batch losses: images of each class per batch")
    fit.add_argument("--learning-rate", type=positive_float, help="default 0.004 (seed recipe: 0.001)")
    fit.add_argument("--schedule", choices=["cosine", "constant"], help="learning-rate schedule (default cosine)")
    fit.add_argument("--patience", type=non_negative_int, help="early-stopping patience in epochs (0: off)")
    fit.add_argument("--val-fraction", type=float, help="share of training images held out (default 0.1)")
    fit.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=None,
                     help="bfloat16 compute (float16 on PyTorch)")
    fit.add_argument("--seed", type=int, help="fixes pairs, splits and initialisation (default 42)")
    p.add_argument("--calibrate", help="threshold rule: accuracy (default), f1, or far=0.01; chosen on validation "
                                       "pairs (training pairs when the validation split is too small)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


SETTINGS = (
    "data_dir", "tower", "weights", "embedding_dim", "normalize", "image_size", "channels", "loss", "margin",
    "pos_margin", "pos_bound", "neg_bound", "mining", "temperature", "augment", "schedule", "epochs", "batch_size",
    "images_per_class", "learning_rate",
    "patience", "val_fraction", "mixed_precision", "seed", "calibrate",
)


def run(args):
    from keras_siamese.training.trainer import train

    settings = {name: getattr(args, name) for name in SETTINGS}
    result = train(args.data, output=args.output, recipe=args.recipe, progress=not args.quiet, **settings)
    figures = result.model.calibration
    print(f"trained {result.record['epochs_run']} epochs in {result.seconds:.1f} s on {result.record['backend']}")
    print(f"threshold {result.model.threshold:.4f} ({figures['rule']} on {figures['split']} pairs: "
          f"accuracy {figures['accuracy']:.4f})")
    for name, path in result.paths.items():
        print(f"{name:>8}: {path}")
