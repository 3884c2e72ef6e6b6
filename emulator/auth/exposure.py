"""Whether a listening address may serve without authentication.

On loopback only this machine's users reach smlocal, as with any local development server. Any
other address (a LAN interface, 0.0.0.0, the Docker bridge) lets others call every API, read every
bucket and run containers on this host; so there smlocal starts only with `--auth`, or with
`--allow-unauthenticated` saying that being open is meant.
"""

from __future__ import annotations

import ipaddress

def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_check(host: str, auth: bool, allow_unauthenticated: bool) -> tuple[str | None, str | None]:
    """(warning to print, reason to refuse to start) for listening on `host`; each None when there
    is nothing to say."""
    if is_loopback(host):
        return None, None
    warning = (f"smlocal: listening on {host}, not loopback: every host that reaches this address can call "
               f"smlocal's APIs" + (" (signed with a key smlocal's IAM issued)." if auth else "."))
    if auth or allow_unauthenticated:
        return warning, None
    return warning, (f"refusing to listen on {host} without authentication; add --auth "
                     f"(SMLOCAL_AUTH=1) so requests must be signed with a key smlocal knows, or "
                     f"--allow-unauthenticated (SMLOCAL_ALLOW_UNAUTHENTICATED=1) if the service is meant to be open.")
