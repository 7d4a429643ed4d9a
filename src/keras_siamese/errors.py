"""The exception types the command line turns into a one-line message."""


class SiameseError(Exception):
    """A problem with the user's input (a file, a folder, a value) rather than a bug.

    The message names the offending file or value; the CLI prints it on one line
    and exits with status 2.
    """


class InvalidValue(SiameseError, ValueError):
    """A bad value of one library argument: "epochs must be at least 1. Received: epochs=0".

    `argument`, `value` and `requirement` stay available, so the command line
    can name its own flag instead (`--epochs`).
    """

    def __init__(self, argument, value, requirement):
        self.argument, self.value, self.requirement = argument, value, requirement
        super().__init__(f"{argument} {requirement}. Received: {argument}={value!r}")


def check(ok, argument, value, requirement):
    """Raise InvalidValue(argument, value, requirement) unless `ok`."""
    if not ok:
        raise InvalidValue(argument, value, requirement)
