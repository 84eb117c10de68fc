"""The S3 face: SigV4 authentication, a named-operation router, S3 XML in and out."""
