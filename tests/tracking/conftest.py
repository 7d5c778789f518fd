from tests.fixtures.dns import dns_server  # noqa: F401
from tests.fixtures.imap import dovecot, dovecot_session  # noqa: F401
from tests.fixtures.smtp import smtp_server, tls_cert  # noqa: F401
from tests.inboxes.conftest import mailbox, make_mailbox  # noqa: F401
from tests.sending.conftest import (  # noqa: F401
    Clock,
    clock,
    outreach,
    settings,
    sink,
)
