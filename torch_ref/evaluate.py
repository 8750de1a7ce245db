"""python -m torch_ref.evaluate --ckpt runs/torch/baseline/best.pt: test accuracy, per-class
accuracy and confusion_matrix.png."""
import torch

from experiment.entry import evaluate_main
from experiment.frameworks import FRAMEWORKS
from torch_ref.checkpoint import model_from_checkpoint
from torch_ref.trainer import pick_device, predict

FRAMEWORK = FRAMEWORKS["torch"]


def load_predictor(ckpt_path, device):
    name, model = model_from_checkpoint(ckpt_path)
    dev = pick_device(device)
    model.to(dev)
    return name, lambda x: predict(model, x, dev).numpy()


main = evaluate_main(FRAMEWORK, load_predictor, setup=lambda: torch.use_deterministic_algorithms(True))


if __name__ == "__main__":
    main()
