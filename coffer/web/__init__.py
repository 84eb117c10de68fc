"""HTTP-server plumbing shared by the faces: the connection protocol, TLS."""
