"""The one exception type the command line turns into a one-line message."""


class SiameseError(Exception):
    """A problem with the user's input (a file, a folder, a value) rather than a bug.

    The message names the offending file or value; the CLI prints it on one line
    and exits with status 2.
    """
