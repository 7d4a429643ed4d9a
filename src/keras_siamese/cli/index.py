"""`siamese index`: embed every image of a folder or data source into a gallery file for `siamese search`."""

from keras_siamese.cli._options import add_model_option, counted

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    p = commands.add_parser("index", help="enrol images into a gallery", description=DESCRIPTION)
    add_model_option(p)
    p.add_argument("--data", required=True,
                   help="a folder of images (class subfolders give labels; files directly in it are unlabelled), "
                        "or mnist-sample, mnist, fashion-mnist (every split)")
    p.add_argument("--data-dir", help="read mnist / fashion-mnist from this folder of the four IDX .gz files")
    p.add_argument("--output", required=True, help="the gallery file to write (e.g. gallery.npz)")
    p.add_argument("--add", action="store_true", help="enrol into the existing gallery --output instead of a new one")
    p.add_argument("--approximate", action="store_true",
                   help="search with an approximate (HNSW) index whatever the size (default: from 100,000 images)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def run(args):
    from keras_siamese.gallery.build import index_images

    gallery, added = index_images(args.model, args.data, args.output, args.add, args.approximate or None,
                                  args.data_dir, progress=not args.quiet)
    labels = len(set(gallery.labels) - {""})
    kind = "approximate" if gallery.uses_approximate else "exact"
    print(f"enrolled {counted(added, 'image')}; {args.output}: {counted(len(gallery), 'image')}, "
          f"{counted(labels, 'label')}, {kind} search")
