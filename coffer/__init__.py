"""Coffer: a self-hosted S3-compatible object store with CoreWeave-style access control."""

__version__ = "0.1.0"
