"""`siamese serve`: an HTTP service and web page to compare images and search a gallery (needs the serve extra)."""

from keras_siamese.cli._options import add_model_option, int_between, positive_int

DESCRIPTION = __doc__.split(": ", 1)[1]


def add_parser(commands):
    p = commands.add_parser("serve", help="HTTP service and web page", description=DESCRIPTION)
    add_model_option(p)
    p.add_argument("--gallery", help="a gallery file to search (and to enrol into, with --allow-enroll)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int_between(1, 65535), default=8000, help="port (default 8000)")
    p.add_argument("--allow-enroll", action="store_true",
                   help="accept POST /gallery with the token (--token, else a random one printed at start)")
    p.add_argument("--token", help="the enrolment token (default: random)")
    p.add_argument("--max-request-bytes", type=positive_int, help="largest request body (default 10 MiB)")
    p.set_defaults(run=run)
    return p


def run(args):
    from keras_siamese.serve.server import serve

    serve(args.model, args.gallery, args.host, args.port, args.allow_enroll, args.token,
          args.max_request_bytes, args.max_pixels)  # --max-pixels: every command has it
