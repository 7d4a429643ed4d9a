"""Runs one training in a fresh process for tests/test_replicas.py (devices can be split only before a
backend starts): `python replicas_run.py OUT DEVICES [COORDINATOR PROCESSES PROCESS_ID | resume]`. Writes OUT
(.npz) with the final weights, the loss history, the threshold and the devices trained on. With `resume`
the run is interrupted after its second epoch and resumed from its checkpoint."""

import sys

import keras
import numpy as np

out, devices = sys.argv[1], int(sys.argv[2])
interrupted = sys.argv[3:] == ["resume"]
if len(sys.argv) > 3 and not interrupted:
    from keras_siamese.training.replicas import join_hosts

    join_hosts(sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))

import keras_siamese as ks  # noqa: E402
from conftest import synthetic_images  # noqa: E402

data = synthetic_images(classes=4, per_class=16, size=12)
# no transform classes: turned upside down, class 0's bright square sits where class 3's does, and training
# to tell such look-alikes apart is chaotic enough that float rounding decides between runs that should agree
settings = dict(devices=devices, epochs=3, batch_size=16, images_per_class=4, embedding_dim=8, augment=False,
                patience=0, seed=5, transform_classes="none")


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


if interrupted:
    folder = out + ".run"
    try:
        ks.train(data, output=folder, progress=False, callbacks=[Interrupt()], **settings)
    except KeyboardInterrupt:
        pass
    result = ks.resume(folder, data=data, progress=False)
    model, history, count = result.model, result.history, result.record["settings"]["devices"]
else:
    trainer = ks.Trainer(data, progress=False, **settings)
    trainer.prepare().build().fit().finish()
    model, history, count = trainer.model, trainer.history, trainer.replicas.global_count
weights = {f"arr_{i}": np.asarray(w) for i, w in enumerate(model.get_weights())}
np.savez(out, loss=np.array(history["loss"]), val_loss=np.array(history.get("val_loss", [])),
         threshold=model.threshold, devices=count, **weights)
