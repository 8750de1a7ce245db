"""The PyTorch reference: the tutorial's models and training, faithful to the original."""
