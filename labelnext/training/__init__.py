"""The model side: backbones by data kind, the one trainer, run folders and the model fingerprint."""
