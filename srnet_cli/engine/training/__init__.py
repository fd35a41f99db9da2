"""Training: loading models for a task, and the one training loop."""
