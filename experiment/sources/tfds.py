"""`tfds`: tensorflow-datasets' cifar10, imported only when asked for."""
import os

import numpy as np

from experiment.dataset import CLASSES, Cifar10
from experiment.errors import UserError
from experiment.sources.download import OFFLINE_HINT, resolves

# tfds fetches from here; offline it retries for minutes, so we look first.
TFDS_HOST = "storage.googleapis.com"


def load_tfds(data_dir=None, host=TFDS_HOST):
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise UserError("tensorflow-datasets is not installed (pip install -e '.[tfds]'); "
                        + OFFLINE_HINT) from None
    builder = tfds.builder("cifar10", data_dir=data_dir)
    prepared = os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))
    if not prepared:
        if not resolves(host):
            raise UserError(f"tfds cifar10 is not prepared and {host} is unreachable; {OFFLINE_HINT}")
        builder.download_and_prepare()
    arrays = []
    for split in ("train", "test"):
        ds = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
        arrays += [np.asarray(ds["image"], np.uint8), np.asarray(ds["label"], np.int64)]
    return Cifar10(*arrays, CLASSES, "tfds:cifar10")
