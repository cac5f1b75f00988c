"""Costs: the cost model, break-even and report rendering (no FastAPI, no database)."""
