"""Inbox settings: a bad value stops start-up with one line naming the variable."""

from __future__ import annotations

import pytest

from imail.config import SettingsError, load_settings
from imail.inboxes.providers import Server, oauth_provider
from tests.conftest import make_settings


@pytest.mark.parametrize(
    "value", ["smtp.gmail.com", "smtp.gmail.com:465", "smtp.gmail.com:0/ssl", "h:465/tls"]
)
def test_a_bad_mail_server_setting_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("IMAIL_GOOGLE_SMTP_SERVER", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("IMAIL_GOOGLE_SMTP_SERVER: ")
    assert "host:port/security" in str(caught.value)


def test_providers_are_off_until_both_client_settings_are_set(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    assert oauth_provider(make_settings(url), "google") is None
    assert oauth_provider(make_settings(url, google_client_id="id"), "google") is None
    google = oauth_provider(make_settings(url, google_client_id="id", google_client_secret="s"), "google")
    assert google is not None and google.smtp == Server("smtp.gmail.com", 465, "ssl")
    assert google.imap == Server("imap.gmail.com", 993, "ssl") and google.scope == "https://mail.google.com/"
    assert (
        oauth_provider(make_settings(url, google_client_id="id", google_client_secret="s"), "custom") is None
    )
