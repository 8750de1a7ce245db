"""The model variants, as data: the one table that the command line, lanes, checkpoints, figures and
both frameworks read.

A variant is the tutorial's LeNet with or without its three dropout layers. A new variant is one
entry here, plus, if it has new layers, its definition in torch_ref/models.py and
flax_impl/models.py (each maps a variant's name to its network in one table of its own).
"""
from dataclasses import dataclass

TUTORIAL_RATE = 0.5  # the tutorial's Dropout(0.5); --dropout-rate's default


@dataclass(frozen=True)
class Variant:
    name: str            # --model, a checkpoint's "model", the folder of the tutorial's pair of runs
    has_dropout: bool    # Dropout before fc1, fc2 and fc3 (at the lane's rate), or none (rate 0)
    legend: str          # its lines in the tutorial's figure: <legend>_train, <legend>_val

    def rate(self, dropout_rate):
        """The dropout rate a lane of this variant trains with, given --dropout-rate."""
        return dropout_rate if self.has_dropout else 0.0


VARIANTS = {v.name: v for v in (
    Variant("baseline", has_dropout=False, legend="normal"),
    Variant("dropout", has_dropout=True, legend="drop"),
)}
MODELS = tuple(VARIANTS)


def variant_of_rate(rate):
    """The variant a lane of --dropout-rates trains: the BaseLine at rate 0, else Dropout."""
    return VARIANTS["baseline" if rate == 0 else "dropout"]
