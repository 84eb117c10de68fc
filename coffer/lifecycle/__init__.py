"""Bucket rules that run by themselves: lifecycle expiration and inventory reports.

`rules` is the pure model of a lifecycle configuration and the dates it implies;
`configs` keeps each bucket's configuration; `executor` is the background pass that
applies them, bounded and resumable, one node per bucket at a time; `inventory` writes
the scheduled reports through the same executor. No HTTP here: the S3 face parses and
renders the XML.
"""
