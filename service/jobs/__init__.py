"""Durable jobs: the job table is the queue; workers claim jobs under a renewable lease."""
