"""python -m torch_ref.evaluate --ckpt runs/torch/baseline/best.pt: test accuracy, per-class
accuracy and confusion_matrix.png."""
import torch

from experiment.entry import evaluate_main
from experiment.frameworks import FRAMEWORKS
from torch_ref.checkpoint import model_from_checkpoint
from torch_ref.precision import set_precision
from torch_ref.trainer import pick_device, predict

FRAMEWORK = FRAMEWORKS["torch"]


def load_predictor(ckpt_path, device, precision=None):
    """(model name, predict(x) -> logits) at `precision`, by default the one the checkpoint was
    trained at (cuDNN's own default would be TF32); predict.precision says which, predict.epoch
    which epoch the weights are from (None: not recorded)."""
    name, model, described = model_from_checkpoint(ckpt_path)
    dev = pick_device(device)
    model.to(dev)

    def predicted(x):
        set_precision(predicted.precision)
        return predict(model, x, dev).numpy()

    predicted.precision, predicted.epoch = precision or described.precision, described.epoch
    return name, predicted


main = evaluate_main(FRAMEWORK, load_predictor, setup=lambda: torch.use_deterministic_algorithms(True))


if __name__ == "__main__":
    main()
