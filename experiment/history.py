"""Reading a lane's history.json (written by experiment.records, in its schema)."""
import json

import numpy as np


def column(history, field):
    return np.array([e[field] for e in history["epochs"]])


def load_history(path):
    with open(path) as f:
        return json.load(f)
