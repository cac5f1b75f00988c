"""Upload and ingest: collections, their documents, and the passages and sentences cut from them."""
