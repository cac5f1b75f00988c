"""Evaluation: eval sets, scorers and statistics (no FastAPI, no database)."""
