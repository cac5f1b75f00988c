"""Workspaces and their API keys: the unit of isolation (POST /v1/workspaces, admin only)."""
