"""Runs: the run directory, its lock, resumable state, devices, processes and experiment trackers."""
