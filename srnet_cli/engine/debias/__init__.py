"""Debiasing: the training losses, bias-only models and the bias and teacher files they read."""
