"""Training: the adapter request (router), its job (the one recipe), and the adapter registry."""
