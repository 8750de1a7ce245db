"""Readers for each place CIFAR-10 can come from; each returns a `Cifar10` of uint8 NHWC arrays."""
