"""One lookup per kind of name (losses, towers, recipes, sources, ...), as `keras.losses.get` does.

Names have one spelling: lower case with hyphens. Underscores are read as
hyphens, so `semi_hard` finds `semi-hard`; every other unknown name is an
`InvalidValue` naming the argument and the choices.
"""

from collections.abc import Mapping

from keras_siamese.errors import InvalidValue


def canonical(name):
    """The one spelling of a name: stripped, lower case, hyphens for underscores."""
    return str(name).strip().lower().replace("_", "-")


class Registry(Mapping):
    """Names of one kind mapped to what they stand for, each with a one-line description.

    `argument` is the library argument that takes these names (`loss`, `tower`):
    errors name it, and the CLI turns it into its flag.
    """

    def __init__(self, argument):
        self.argument = argument
        self._values, self._help = {}, {}

    def add(self, name, value, help=""):
        """Register `value` under `name` (already canonical); returns `value`."""
        if name != canonical(name) or name in self._values:
            raise ValueError(f"{self.argument} name {name!r} is not canonical or already registered")
        self._values[name], self._help[name] = value, help
        return value

    def register(self, name, help=""):
        """Decorator form of `add`."""
        return lambda value: self.add(name, value, help)

    def name(self, name):
        """The registered spelling of `name`; InvalidValue when there is none."""
        key = canonical(name)
        if key not in self._values:
            raise InvalidValue(self.argument, name, f"must be one of {', '.join(self._values)}")
        return key

    def get(self, name):
        """What `name` stands for; InvalidValue when it is unknown."""
        return self._values[self.name(name)]

    def describe(self):
        """`name: help; ...` for command-line help texts."""
        return "; ".join(f"{name}: {text}" if text else name for name, text in self._help.items())

    def __getitem__(self, name):
        return self.get(name)

    def __contains__(self, name):
        return canonical(name) in self._values

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)
