"""Fine-tuning jobs: build a collection's training set, run the one recipe, register the adapter."""
