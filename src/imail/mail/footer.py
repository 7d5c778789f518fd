"""The footer a campaign with `include_footer` adds to every email: the opt-out line and the sender's postal
address, as CAN-SPAM asks of commercial email. Pure: the sending engine and the preview render it alike."""

from __future__ import annotations

import html
from dataclasses import dataclass

from imail.mail import templates

UNSUBSCRIBE_VARIABLE = "unsubscribe_url"
DEFAULT_FOOTER_TEXT = "Don't want to hear from me again? Unsubscribe: {{unsubscribe_url}}"
MAX_POSTAL_ADDRESS = 500
MAX_FOOTER_TEXT = 1000


@dataclass(frozen=True)
class Footer:
    postal_address: str
    text: str | None = None  # the opt-out line, a template using {{unsubscribe_url}}; None: the default line


def check_footer_text(text: str) -> None:
    """Raises TemplateError unless the opt-out line is a template using {{unsubscribe_url}} and nothing
    else."""
    template = templates.check(text, frozenset({UNSUBSCRIBE_VARIABLE}))
    if not any(var.name == UNSUBSCRIBE_VARIABLE for var in template.variables()):
        raise templates.TemplateError("the opt-out line must contain {{unsubscribe_url}}", 1, 1, 1)


def render_footer(footer: Footer, unsubscribe_url: str) -> str:
    """The footer as HTML (the text part is derived from it like the body's): each line of the opt-out text
    and of the address on its own line, the unsubscribe URL as a link that shows itself, so it reads the same
    in the plain-text part."""
    line = templates.render(footer.text or DEFAULT_FOOTER_TEXT, {UNSUBSCRIBE_VARIABLE: unsubscribe_url})
    shown = html.escape(unsubscribe_url, quote=False)
    link = f'<a href="{html.escape(unsubscribe_url, quote=True)}">{shown}</a>'
    lines = [html.escape(part, quote=False).replace(shown, link) for part in line.splitlines()]
    lines += [html.escape(part, quote=False) for part in footer.postal_address.splitlines() if part.strip()]
    return f'<p style="color:#777777;font-size:12px">{"<br>".join(lines)}</p>'
