"""`siamese pairs`: random image pairs from a folder, shown side by side with their distances."""

from keras_siamese.cli._options import add_model_option, int_between, random_seed
from keras_siamese.inference.random_pairs import MAX_PAIRS

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    p = commands.add_parser("pairs", help="figure of random pairs with distances", description=DESCRIPTION)
    add_model_option(p)
    p.add_argument("--input", required=True, help="folder of images (searched recursively)")
    p.add_argument("--count", type=int_between(1, MAX_PAIRS), default=10,
                   help=f"number of pairs, 1 to {MAX_PAIRS} (default 10); no pair twice, so at most every pair of the "
                        "images")
    p.add_argument("--seed", type=random_seed, default=42)
    p.add_argument("--output", default="pairs.png", help="PNG figure; the table goes beside it as .csv")
    p.add_argument("--show", action="store_true", help="also open the figure in a window, where a display exists")
    p.set_defaults(run=run)
    return p


def run(args):
    from keras_siamese.inference.model_io import load_model
    from keras_siamese.inference.random_pairs import random_pairs_report

    model = load_model(args.model)
    report = random_pairs_report(model, args.input, args.count, args.seed, args.output, show=args.show)
    width = max(len(str(row["image_a"])) for row in report["rows"])
    for row in report["rows"]:
        decision = f"  {row['decision']}" if row["decision"] else ""
        print(f"{row['image_a']:<{width}}  {row['image_b']:<{width}}  {row['distance']:.4f}{decision}")
    print(f"figure: {report['figure']}\ntable:  {report['table']}")
