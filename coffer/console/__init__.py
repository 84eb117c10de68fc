"""The web console: a browser client of the control plane and the S3 endpoint.

It is served by the control-plane port under /console. Nothing here decides anything:
control-plane calls go from the page straight to /v1/cwobject/... (authenticated by the
session cookie), and bucket and object calls go through /console/api/..., which signs
real S3 requests with a temporary key of the signed-in user and sends them to this
node's own S3 listener. See docs/console.md.

It shares the API port's plumbing (`coffer.web.http`: session cookie and CSRF token,
authentication, JSON bodies) with the control plane and imports nothing from `coffer.api`;
`coffer.server` mounts its routes beside the control plane's.
"""
