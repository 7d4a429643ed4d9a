"""The default recipe's quality on the embedded data set: a regression guard (slow: about a minute)."""

import pytest

from keras_siamese import evaluate, train


@pytest.mark.slow
def test_default_recipe_on_mnist_sample_stays_accurate():
    result = train("mnist-sample", output=None, progress=False)
    metrics = evaluate(result.model, "mnist-sample", split="test", episodes=200, progress=False)
    verification = metrics["verification"]
    # measured: AUC 0.997-0.998 and calibrated accuracy 0.979-0.984 over several runs
    assert verification["roc_auc"] >= 0.99
    assert verification["at_threshold"]["accuracy"] >= 0.96
    assert metrics["retrieval"]["precision_at_1"] >= 0.96
