"""Persistence: the metadata store (SQLite or PostgreSQL) and the blob store (a directory)."""
