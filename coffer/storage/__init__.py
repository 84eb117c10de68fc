"""Buckets, objects and multipart uploads: the S3 domain, with no HTTP in it.

Metadata lives in the metadata store; bodies live in the blob store. A write streams
into a temp blob, syncs it, publishes it atomically, and only then commits metadata,
so a crash leaves at worst an unreferenced blob for the collector.
"""
