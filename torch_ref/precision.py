"""--precision for PyTorch: float32 matmuls (cuBLAS) and convolutions (cuDNN) in full float32
('highest', PyTorch's 'ieee') or TensorFloat-32 ('tf32'). By default PyTorch uses TF32 for cuDNN
convolutions but not for matmuls, so neither setting is its default: both are set explicitly."""
import torch

MODES = {"highest": "ieee", "tf32": "tf32"}


def set_precision(name):
    mode = MODES[name]
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # the API since PyTorch 2.9
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"


def current_precision():
    """{'matmul': ..., 'conv': ...} as PyTorch reports them ('ieee' or 'tf32')."""
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        return {"matmul": torch.backends.cuda.matmul.fp32_precision, "conv": torch.backends.cudnn.conv.fp32_precision}
    as_mode = {True: "tf32", False: "ieee"}
    return {"matmul": as_mode[torch.backends.cuda.matmul.allow_tf32], "conv": as_mode[torch.backends.cudnn.allow_tf32]}
