"""`siamese samples`: write example images (PNG, named with their class) from a data set's test split."""

from keras_siamese.cli._options import add_data_options, image_size, positive_int, random_seed

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    p = commands.add_parser("samples", help="write example images", description=DESCRIPTION)
    add_data_options(p)
    p.add_argument("--output", required=True, help="folder to write the PNG files into")
    p.add_argument("--count", type=positive_int, default=13, help="how many images (default 13, as the seed)")
    p.add_argument("--seed", type=random_seed, default=42)
    p.add_argument("--image-size", type=image_size,
                   help="write images at SIZE or HEIGHTxWIDTH (default: the size training would read them at: "
                        "a folder's median size up to 96 pixels, else 64x64), e.g. your model's --image-size")
    p.set_defaults(run=run)
    return p


def run(args):
    from keras_siamese.data.samples import write_samples

    paths = write_samples(args.data, args.output, args.count, args.seed, args.data_dir, args.image_size)
    short = f" (the test split holds only {len(paths)}; --count was {args.count})" if len(paths) < args.count else ""
    print(f"wrote {len(paths)} images to {args.output}{short}")
