"""The control-plane face: CoreWeave's /v1/cwobject REST API as status-JSON over HTTP."""
