"""Subnetworks: which matrices a model's masks cover, masks, magnitude pruning and mask files."""
