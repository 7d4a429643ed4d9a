"""`siamese compare`: the distance between two image files, and the decision when calibrated."""

from keras_siamese.cli._options import add_model_option

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    p = commands.add_parser("compare", help="distance between two images", description=DESCRIPTION)
    add_model_option(p)
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.set_defaults(run=run)
    return p


def run(args):
    from keras_siamese.inference.compare import compare
    from keras_siamese.inference.model_io import load_model

    model = load_model(args.model)
    result = compare(model, args.image_a, args.image_b)
    line = f"distance {result['distance']:.4f}"
    if result["decision"]:
        line += f"  {result['decision']} (threshold {result['threshold']:.4f})"
    print(line)
