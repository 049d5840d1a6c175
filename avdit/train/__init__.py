"""Diffusion training: one loop for CPU, one GPU and torchrun."""
