"""The JAX/Flax implementation of the experiment: same models, flags and outputs as torch_ref."""
