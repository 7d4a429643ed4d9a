"""Registries: one spelling per name, errors that name the argument, choices for the command line."""

import pytest

from keras_siamese.errors import InvalidValue
from keras_siamese.registry import Registry, canonical


def test_names_have_one_spelling_and_unknown_names_name_the_argument():
    colours = Registry("colour")
    colours.add("dark-red", (128, 0, 0), "a deep red")
    assert colours.get("dark_red") == colours["Dark-Red"] == (128, 0, 0)
    assert "dark_red" in colours and "blue" not in colours
    assert list(colours) == ["dark-red"] and colours.describe() == "dark-red: a deep red"
    with pytest.raises(InvalidValue, match=r"colour must be one of dark-red. Received: colour='blue'") as info:
        colours.get("blue")
    assert (info.value.argument, info.value.value) == ("colour", "blue")
    assert isinstance(info.value, ValueError)  # library callers may catch it as keras' errors


def test_a_name_is_registered_once_and_canonically():
    things = Registry("thing")
    things.add("a", 1)
    with pytest.raises(ValueError):
        things.add("a", 2)
    with pytest.raises(ValueError):
        things.add("B_c", 3)
    assert canonical(" Semi_Hard ") == "semi-hard"


def test_every_library_registry_uses_canonical_names():
    from keras_siamese.losses.triplet import MINING
    from keras_siamese.models.towers import TOWERS
    from keras_siamese.training.config import RECIPES, SCHEDULES, VAL_SPLITS
    from keras_siamese.training.objectives import LOSSES

    for registry in (MINING, TOWERS, RECIPES, SCHEDULES, VAL_SPLITS, LOSSES):
        assert len(registry) >= 2
        assert all(name == canonical(name) for name in registry)
