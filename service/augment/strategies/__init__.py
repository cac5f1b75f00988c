"""The augmentation strategies: local, decomposed, global, linked and qa (one module each)."""
