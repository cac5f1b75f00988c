"""The audit log: who did which admin or destructive action, when, and how it ended."""
