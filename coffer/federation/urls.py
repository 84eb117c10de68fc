"""The URL rule for everything Coffer fetches or trusts by URL: HTTPS, or HTTP to loopback only.

Plain HTTP to a remote host would let anyone on the path substitute the IdP's signing keys, which
is equivalent to minting credentials at will. Loopback HTTP is allowed because nothing on the
network can intercept it, and it makes local IdPs and tests possible.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

MAX_URL_LENGTH = 1024


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1; not names that merely resolve there (DNS can change)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, what: str) -> str | None:
    """Return why `url` is unacceptable as an issuer or key URL, or None when it is fine."""
    if not isinstance(url, str) or not url:
        return f"{what} is required"
    if len(url) > MAX_URL_LENGTH:
        return f"{what} must be at most {MAX_URL_LENGTH} characters"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return f"{what} must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return f"{what} is not a valid URL"
    if parts.scheme not in ("https", "http") or not host:
        return f"{what} must be an absolute https:// URL"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"{what} must use https (http is allowed only for loopback hosts)"
    if parts.username is not None or parts.password is not None:
        return f"{what} must not contain credentials"
    if parts.fragment or "#" in url:
        return f"{what} must not contain a fragment"
    return None
