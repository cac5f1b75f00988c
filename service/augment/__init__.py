"""Augmentation engine: strategies that ask a teacher model for inferences from documents.

Pure library code (no FastAPI, no database): the job framework calls `run_strategy` and records
each unit's examples as `on_unit_done` hands them over.
"""
