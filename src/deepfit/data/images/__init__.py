"""Image data: sources that decode to one uint8 tensor, the on-disk cache, and the batched
augmentations that run on the training device."""
