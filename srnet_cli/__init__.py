"""srnet: find sparse and robust subnetworks (SRNets) of pre-trained language models."""

__version__ = "0.1.0"
