"""`siamese search`: the nearest gallery images of each query image, and a match or `unknown` decision."""

from keras_siamese.cli._options import positive_int

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    p = commands.add_parser("search", help="nearest gallery images of query images", description=DESCRIPTION)
    p.add_argument("--gallery", required=True, help="a gallery file written by `siamese index`")
    p.add_argument("--model", help="the model file (default: the one recorded in the gallery)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="query image files")
    p.add_argument("-k", type=positive_int, default=5, help="neighbours per query (default 5)")
    p.add_argument("--output", help="also draw a montage of each query beside its neighbours (PNG)")
    p.add_argument("--data-dir", help="for the montage of a gallery of mnist / fashion-mnist (index --data): the "
                                      "folder of its four IDX .gz files, when it was indexed from one")
    p.set_defaults(run=run)
    return p


def format_result(name, result, threshold):
    """A heading line with the decision, then one line per neighbour."""
    nearest = result["neighbours"][0]["distance"] if result["neighbours"] else float("nan")
    if result["decision"] == "match":
        heading = f"match {result['label'] or result['neighbours'][0]['id']} (distance {nearest:.4f} < {threshold:.4f})"
    elif result["decision"] == "unknown":
        heading = f"unknown (nearest {nearest:.4f} >= threshold {threshold:.4f})"
    else:
        heading = "no decision (the model has no calibrated threshold)"
    lines = [f"{name}: {heading}"]
    lines += [f"  {rank:>3}  {n['distance']:.4f}  {n['label'] or '-'}  {n['id']}"
              for rank, n in enumerate(result["neighbours"], 1)]
    return "\n".join(lines)


def run(args):
    from pathlib import Path

    from keras_siamese.data.folder import read_image
    from keras_siamese.errors import SiameseError
    from keras_siamese.gallery.build import open_gallery
    from keras_siamese.outputs import FIGURE_SUFFIXES, check_output_file

    if args.output:
        check_output_file(args.output, FIGURE_SUFFIXES)
    gallery = open_gallery(args.gallery, args.model)
    if not len(gallery):
        raise SiameseError(f"{args.gallery}: the gallery holds no images (enrol some with siamese index --add)")
    shape = gallery.model.input_image_shape
    queries = [read_image(Path(p), shape[:2], shape[2]) for p in args.images]
    results = gallery.search(queries, args.k)
    print("\n".join(format_result(name, result, gallery.threshold) for name, result in zip(args.images, results)))
    if args.output:
        from keras_siamese.data.folder import resize_images
        from keras_siamese.data.sources import SourceImages
        from keras_siamese.plotting.montage import plot_search_montage

        sources = SourceImages(args.data_dir)  # a named source's images (index --data mnist) have ids, not files

        def picture(neighbour):
            path = neighbour["path"]
            if path:
                return read_image(path, shape[:2], shape[2]) if Path(path).is_file() else None
            image = sources[neighbour["id"]]
            return None if image is None else resize_images(image[None], shape)[0]

        neighbours = [[picture(n) for n in result["neighbours"]] for result in results]
        plot_search_montage(queries, results, neighbours, args.output, [Path(p).name for p in args.images])
        print(f"montage: {args.output}")
