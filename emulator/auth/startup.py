"""What `smlocal serve` does about authentication before it binds: refuse an open non-loopback
address, and settle the root key (the configured one, else one kept in the data directory, made
and printed the first time) so that everything later reads it from the Config."""

from __future__ import annotations

import dataclasses
import os
import sys

from emulator.auth.exposure import exposure_check
from emulator.auth.keys import ROOT_KEY_FILE, new_key_pair, parse_root_key, stored_root_key


def prepare_auth(config, out=None, err=None):
    """The Config to serve with (its root key settled when auth is on); ValueError saying why not
    to start. Prints the exposure warning to `err` and, when auth is on, the root key to `out`."""
    out, err = out or sys.stdout, err or sys.stderr
    warning, refusal = exposure_check(config.host, config.auth, config.allow_unauthenticated)
    if warning:
        print(warning, file=err)
    if refusal:
        raise ValueError(refusal)
    if not config.auth:
        return config
    if os.environ.get("MOTO_ACCOUNT_ID"):
        raise ValueError("--auth needs MOTO_ACCOUNT_ID unset: moto would put every request in that account "
                         "whichever key signed it")
    if config.auth_root_key:
        record = parse_root_key(config.auth_root_key)  # ValueError: the flag is malformed
        print(f"smlocal: authentication on; root key {record.access_key} (account {record.account}) as "
              f"configured", file=out)
        return config
    text, where = _generated_root_key(config)
    record = parse_root_key(text)
    print(f"smlocal: authentication on; root key of account {record.account} ({where}):\n"
          f"  export AWS_ACCESS_KEY_ID={record.access_key} AWS_SECRET_ACCESS_KEY={record.secret}", file=out)
    return dataclasses.replace(config, auth_root_key=text)


def _generated_root_key(config) -> tuple[str, str]:
    if config.ephemeral:
        key, secret = new_key_pair()
        return f"{key}:{secret}", "made for this run only, as --ephemeral keeps nothing"
    text, made = stored_root_key(config.data_dir)
    path = config.data_dir / ROOT_KEY_FILE
    return text, (f"new, kept in {path} (mode 0600)" if made else f"kept in {path}")
