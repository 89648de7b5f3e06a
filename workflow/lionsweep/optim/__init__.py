"""Optimizers: the registry (torch-free hparams), batched kernels, drivers."""
