"""Runs one training in a fresh process for tests/test_replicas.py (devices can be split only before a
backend starts): `python replicas_run.py OUT DEVICES [COORDINATOR PROCESSES PROCESS_ID]`. Writes OUT (.npz)
with the final weights, the loss history and, when not across hosts, the one-step loss check."""

import sys

import numpy as np

out, devices = sys.argv[1], int(sys.argv[2])
if len(sys.argv) > 3:
    from keras_siamese.training.replicas import join_hosts

    join_hosts(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))

import keras_siamese as ks  # noqa: E402
from conftest import synthetic_images  # noqa: E402

images, labels = synthetic_images(classes=4, per_class=16, size=12)
trainer = ks.Trainer((images, labels), progress=False, devices=devices, epochs=3, batch_size=16, images_per_class=4,
                     embedding_dim=8, augment=False, patience=0, seed=5)
trainer.prepare().build().fit().finish()
weights = {f"arr_{i}": np.asarray(w) for i, w in enumerate(trainer.model.get_weights())}
np.savez(out, loss=np.array(trainer.history["loss"]), val_loss=np.array(trainer.history.get("val_loss", [])),
         threshold=trainer.model.threshold, devices=trainer.replicas.global_count, **weights)
