"""Framework-neutral half of the experiment (NumPy only): data, split, records, plots.

Both the PyTorch reference and the Flax implementation read the same arrays from here,
so any difference between their results is the framework's.
"""
