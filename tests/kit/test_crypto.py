"""Encryption at rest: Fernet keyed from IMAIL_SECRET_KEY, purposes kept apart, rotation through retired
keys."""

from __future__ import annotations

import pytest

from imail.kit import crypto
from tests.conftest import make_settings

OLD = "old-secret-key-0123456789-abcdefghijklmnopqrstu"
NEW = "new-secret-key-0123456789-abcdefghijklmnopqrstu"


def test_round_trip_and_no_plaintext_in_the_ciphertext():
    box = crypto.SecretBox(NEW)
    token = box.encrypt("hunter2-password")
    assert "hunter2" not in token and box.decrypt(token) == "hunter2-password"
    assert box.encrypt("hunter2-password") != token  # random IV every time


def test_another_key_or_a_tampered_token_does_not_open_it():
    token = crypto.SecretBox(NEW).encrypt("secret")
    with pytest.raises(crypto.InvalidToken):
        crypto.SecretBox(OLD).decrypt(token)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(crypto.InvalidToken):
        crypto.SecretBox(NEW).decrypt(tampered)


def test_purposes_use_different_keys():
    token = crypto.SecretBox(NEW, purpose=crypto.OAUTH_STATE).encrypt("state")
    with pytest.raises(crypto.InvalidToken):
        crypto.SecretBox(NEW, purpose=crypto.CREDENTIALS).decrypt(token)


def test_rotation_reads_old_tokens_and_rewrites_them_under_the_new_key():
    old_token = crypto.SecretBox(OLD).encrypt("pw")
    box = crypto.SecretBox(NEW, [OLD])
    assert box.decrypt(old_token) == "pw"
    assert not box.is_current(old_token)
    rotated = box.rotate(old_token)
    assert box.is_current(rotated)
    assert crypto.SecretBox(NEW).decrypt(rotated) == "pw"  # the old key is no longer needed
    assert (
        box.encrypt("x") and crypto.SecretBox(NEW).decrypt(box.encrypt("x")) == "x"
    )  # writes use the new key


def test_retired_keys_come_from_a_comma_separated_setting(tmp_path):
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path}/x.db", secret_key=NEW, secret_keys_old=f" {OLD} , ,"
    )
    assert crypto.retired_keys(settings) == [OLD]
    assert crypto.secret_box(settings).decrypt(crypto.SecretBox(OLD).encrypt("v")) == "v"


def test_an_opened_token_is_kept_but_only_by_its_own_box():
    token = crypto.SecretBox(NEW).encrypt("pw")
    box = crypto.SecretBox(NEW)
    assert box.decrypt(token) == box.decrypt(token) == "pw"
    with pytest.raises(crypto.InvalidToken):
        crypto.SecretBox(OLD).decrypt(token)  # another key set never sees what this box opened
    with pytest.raises(crypto.InvalidToken):
        box.decrypt(token, ttl=-1)  # with a ttl the token is checked again, every time
