"""The PyTorch reference: the tutorial's models and training, faithful to the original."""
import os

# cuBLAS reads this when CUDA starts; the tutorial engine's deterministic mode needs it on a GPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
