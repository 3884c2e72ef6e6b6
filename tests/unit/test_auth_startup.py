"""`smlocal serve` and authentication: a non-loopback address is refused without --auth (or an
explicit --allow-unauthenticated), and with --auth the root key is the configured one or one kept
in the data directory (0600) and printed at start."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys

import pytest

from emulator import auth as auth_module
from emulator.auth.exposure import exposure_check
from emulator.auth.startup import prepare_auth
from emulator.config import Config

SMLOCAL_VARS = ("SMLOCAL_AUTH", "SMLOCAL_AUTH_ROOT_KEY", "SMLOCAL_ALLOW_UNAUTHENTICATED", "SMLOCAL_HOST",
                "MOTO_ACCOUNT_ID")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in SMLOCAL_VARS:
        monkeypatch.delenv(name, raising=False)


def prepared(**overrides):
    out, err = io.StringIO(), io.StringIO()
    config = prepare_auth(Config.from_env(**overrides), out=out, err=err)
    return config, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"])
def test_loopback_needs_nothing(host):
    assert exposure_check(host, auth=False, allow_unauthenticated=False) == (None, None)


def test_serve_on_another_address_without_auth_exits_2_saying_what_to_do():
    environment = {k: v for k, v in os.environ.items() if k not in SMLOCAL_VARS}
    environment["PYTHONPATH"] = os.getcwd()
    done = subprocess.run([sys.executable, "-m", "emulator", "serve", "--host", "0.0.0.0", "--port", "0"],
                          capture_output=True, text=True, timeout=60, env=environment)
    assert done.returncode == 2
    assert "not loopback" in done.stderr and "--auth" in done.stderr and "--allow-unauthenticated" in done.stderr


def test_an_open_address_on_purpose_starts_with_a_warning():
    config, out, err = prepared(host="0.0.0.0", allow_unauthenticated=True)
    assert not config.auth and "not loopback" in err


def test_the_environment_turns_auth_on(monkeypatch, tmp_path):
    monkeypatch.setenv("SMLOCAL_AUTH", "1")
    monkeypatch.setenv("SMLOCAL_HOST", "10.1.2.3")
    config, out, err = prepared(data_dir=tmp_path)
    assert config.auth and config.host == "10.1.2.3" and "not loopback" in err and "export AWS_ACCESS_KEY_ID=" in out


def test_a_generated_root_key_is_kept_0600_printed_and_reused(tmp_path):
    config, out, _ = prepared(auth=True, data_dir=tmp_path)
    path = tmp_path / "auth-root-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key, secret = path.read_text().strip().split(":")
    assert f"export AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret}" in out and "new, kept in" in out
    again, out_again, _ = prepared(auth=True, data_dir=tmp_path)
    assert again.auth_root_key == config.auth_root_key and "new" not in out_again
    authenticator = auth_module.from_config(again)
    assert authenticator.keys.find(key).secret == secret


def test_ephemeral_keeps_no_key_file(tmp_path):
    config, out, _ = prepared(auth=True, ephemeral=True, data_dir=tmp_path)
    assert config.auth_root_key and not (tmp_path / "auth-root-key").exists() and "this run only" in out


def test_a_configured_root_key_is_used_and_its_secret_not_printed(tmp_path):
    config, out, _ = prepared(auth=True, data_dir=tmp_path, auth_root_key="AKIACONFIGUREDKEY001:s3cr3t:210987654321")
    assert "AKIACONFIGUREDKEY001" in out and "s3cr3t" not in out
    record = auth_module.from_config(config).keys.find("AKIACONFIGUREDKEY001")
    assert (record.secret, record.account) == ("s3cr3t", "210987654321")


@pytest.mark.parametrize("flag", ["nocolon", "AKIA:", "short:secret", "AKIACONFIGUREDKEY001:s:12"])
def test_a_malformed_root_key_is_refused_saying_the_form(flag):
    with pytest.raises(ValueError, match="--auth-root-key"):
        prepared(auth=True, ephemeral=True, auth_root_key=flag)


def test_auth_refuses_a_pinned_moto_account(monkeypatch, tmp_path):
    monkeypatch.setenv("MOTO_ACCOUNT_ID", "111111111111")
    with pytest.raises(ValueError, match="MOTO_ACCOUNT_ID"):
        prepared(auth=True, data_dir=tmp_path)


def test_auth_is_off_by_default():
    assert auth_module.from_config(Config.from_env()) is None
