"""Builds tests/data/replies/train.jsonl (and its shipped copy) from the hand-written reply texts.

    PYTHONPATH=src python tests/data/replies/corpus/compose.py

Sources, all written by hand: `base.jsonl` (the first corpus, en/de/fr/es, relabelled to the README's label
contract), `phrases_new.py` (pt/nl/it in full and the contract's boundary cases in every language),
`phrases_more.py` (breadth: more ways to decline, defer, point elsewhere, be away, agree to talk or opt out),
`phrases_en.py` (more English, the language of most replies) and `phrases_pt_nl_it.py` (a third batch for pt, nl
and it). Each text is kept as written and also dressed, deterministically (a fixed seed), the way replies arrive: a
greeting and a sign-off or signature block, our quoted email under an attribution line in the writer's language (or
an Outlook header block), a note from someone the email was forwarded to, an English pleasantry around a reply in
another language (people mix languages), all lower case without punctuation, or a typo. Copies of one text share a
`group` number, so that calibration sets whole groups aside (a sibling in training would make the model look surer
than it is). The held-out sets (heldout.jsonl, heldout_fresh.jsonl) are written separately, by hand, and never
generated here.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from phrases_en import ENGLISH
from phrases_more import MORE
from phrases_new import CORE
from phrases_pt_nl_it import EXTRA

ROOT = HERE.parents[3]
OUT = [
    ROOT / "tests" / "data" / "replies" / "train.jsonl",
    ROOT / "src" / "imail" / "replies" / "data" / "train.jsonl",
]
VARIANTS = 3  # dressed copies per text, besides the text itself

GREETING = {
    "en": ["Hi Alex,", "Hello,", "Hey Sam,", "Dear Mr. Jones,", "Hi there,", "Morning Chris,", "Alex -"],
    "de": ["Hallo Herr Becker,", "Hallo,", "Guten Tag,", "Sehr geehrter Herr Wolf,", "Hi Jonas,", "Moin,"],
    "fr": ["Bonjour,", "Bonjour Monsieur Laurent,", "Salut Julien,", "Madame, Monsieur,", "Bonjour Claire,"],
    "es": ["Hola,", "Hola Carlos,", "Buenos días,", "Estimado Sr. Pérez:", "Buenas tardes Lucía,"],
    "pt": ["Olá,", "Oi Rafael,", "Bom dia,", "Prezado Sr. Costa,", "Boa tarde Mariana,", "Caro Tiago,"],
    "nl": ["Hoi,", "Hallo Daan,", "Goedemorgen,", "Beste meneer Jansen,", "Beste Lotte,", "Dag Bram,"],
    "it": ["Ciao,", "Buongiorno,", "Gentile Dott. Bianchi,", "Ciao Matteo,", "Salve,", "Buonasera Chiara,"],
}
SIGN_OFF = {
    "en": ["Best,", "Thanks,", "Kind regards,", "Cheers,", "Regards,", "Best regards,"],
    "de": ["Viele Grüße", "Mit freundlichen Grüßen", "Beste Grüße", "LG", "Danke und Gruß"],
    "fr": ["Cordialement,", "Bien à vous,", "Bonne journée,", "Merci,", "Bien cordialement,"],
    "es": ["Saludos,", "Un saludo,", "Gracias,", "Atentamente,", "Saludos cordiales,"],
    "pt": ["Abraço,", "Obrigado,", "Atenciosamente,", "Cumprimentos,", "Att.,", "Um abraço,"],
    "nl": ["Groet,", "Met vriendelijke groet,", "Groeten,", "Bedankt,", "Mvg,", "Hartelijke groet,"],
    "it": ["Saluti,", "Cordiali saluti,", "Grazie,", "Un saluto,", "Buona giornata,", "Distinti saluti,"],
}
NAMES = [
    "Jordan Lee",
    "Katrin Vogel",
    "Mathieu Blanc",
    "Lucía Romero",
    "Rita Sousa",
    "Jeroen Bakker",
    "Giulia Conti",
    "Priya N.",
    "Tom",
    "M. Ferreira",
    "Sanne",
    "Luca",
]
TITLES = [
    "Head of Operations",
    "CEO | Fundador",
    "Directeur commercial",
    "Gerente de Compras",
    "IT Manager",
    "Marketing Lead",
    "Responsabile Vendite",
    "Teamleider Sales",
    "Diretora Financeira",
]
COMPANIES = [
    "Acme GmbH",
    "Norte Logística Lda.",
    "Bakker & Zn B.V.",
    "Rossi S.r.l.",
    "Dupont SAS",
    "Tecno SL",
    "Northwind Inc.",
]
PITCH = {
    "en": "Hi {n}, I noticed your team is hiring SDRs. We help sales teams book more meetings with less effort. "
    "Worth a quick chat?",
    "de": "Hallo {n}, ich habe gesehen, dass Ihr Team wächst. Wir helfen Vertriebsteams, mehr Termine zu buchen. "
    "Hätten Sie Interesse an einem kurzen Austausch?",
    "fr": "Bonjour {n}, j'ai vu que votre équipe recrute. Nous aidons les équipes commerciales à décrocher plus de "
    "rendez-vous. Un court échange vous intéresserait ?",
    "es": "Hola {n}, vi que vuestro equipo está creciendo. Ayudamos a equipos comerciales a conseguir más "
    "reuniones. ¿Te interesaría una breve llamada?",
    "pt": "Olá {n}, vi que a sua equipa está a crescer. Ajudamos equipas comerciais a marcar mais reuniões. "
    "Teria interesse numa conversa rápida?",
    "nl": "Hoi {n}, ik zag dat jullie team groeit. Wij helpen salesteams meer afspraken te boeken. "
    "Zin in een kort gesprek?",
    "it": "Ciao {n}, ho visto che il vostro team sta crescendo. Aiutiamo i team commerciali a fissare più "
    "appuntamenti. Le interesserebbe una breve chiamata?",
}
ATTRIBUTION = {
    "en": "On Tue, 4 Mar 2025 at 09:12, Alex Morgan <alex@outreach.example> wrote:",
    "de": "Am Di., 4. März 2025 um 09:12 Uhr schrieb Alex Morgan <alex@outreach.example>:",
    "fr": "Le mar. 4 mars 2025 à 09:12, Alex Morgan <alex@outreach.example> a écrit :",
    "es": "El mar, 4 mar 2025 a las 9:12, Alex Morgan (<alex@outreach.example>) escribió:",
    "pt": "Em ter., 4 de mar. de 2025 às 09:12, Alex Morgan <alex@outreach.example> escreveu:",
    "nl": "Op di 4 mrt 2025 om 09:12 schreef Alex Morgan <alex@outreach.example>:",
    "it": "Il giorno mar 4 mar 2025 alle ore 09:12 Alex Morgan <alex@outreach.example> ha scritto:",
}
OUTLOOK = {
    "en": ("From", "Sent", "To", "Subject"),
    "de": ("Von", "Gesendet", "An", "Betreff"),
    "fr": ("De", "Envoyé", "À", "Objet"),
    "es": ("De", "Enviado el", "Para", "Asunto"),
    "pt": ("De", "Enviada em", "Para", "Assunto"),
    "nl": ("Van", "Verzonden", "Aan", "Onderwerp"),
    "it": ("Da", "Inviato", "A", "Oggetto"),
}
# Someone the email was forwarded to writes back.
FORWARDED = {
    "en": [
        "My colleague forwarded me your email.",
        "Mark passed your note on to me.",
        "Your message was forwarded to me by our CEO.",
    ],
    "de": [
        "Mein Kollege hat mir Ihre E-Mail weitergeleitet.",
        "Ihre Nachricht wurde an mich weitergeleitet.",
    ],
    "fr": ["Mon collègue m'a transféré votre e-mail.", "On m'a transmis votre message."],
    "es": ["Mi compañero me ha reenviado tu correo.", "Me han pasado tu mensaje."],
    "pt": ["Um colega me encaminhou o seu e-mail.", "Recebi a sua mensagem através do meu chefe."],
    "nl": ["Mijn collega heeft je mail aan mij doorgestuurd.", "Uw bericht is naar mij doorgestuurd."],
    "it": ["Un collega mi ha inoltrato la sua email.", "Mi hanno girato il suo messaggio."],
}
PLEASANTRY = {  # neither here nor there: a label must not hang on them
    "en": ["Thanks for reaching out.", "Thanks for your email.", "Appreciate the note.", "Hope you're well."],
    "de": ["Danke für Ihre Nachricht.", "Vielen Dank für die E-Mail."],
    "fr": ["Merci de votre mail.", "Merci de m'avoir contacté."],
    "es": ["Gracias por tu mensaje.", "Gracias por escribir."],
    "pt": ["Obrigado pela mensagem.", "Obrigada pelo contato."],
    "nl": ["Bedankt voor je bericht.", "Dank voor uw mail."],
    "it": ["Grazie per il messaggio.", "Grazie per avermi scritto."],
}


def signature(rng: random.Random) -> str:
    lines = [rng.choice(NAMES)]
    if rng.random() < 0.7:
        lines.append(rng.choice(TITLES))
    if rng.random() < 0.6:
        lines.append(rng.choice(COMPANIES))
    if rng.random() < 0.4:
        lines.append(f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}")
    return "\n".join(lines)


def typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    long = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not long:
        return text
    i = rng.choice(long)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def dress(text: str, lang: str, rng: random.Random, kind: str) -> str:
    if kind == "letter":
        return f"{rng.choice(GREETING[lang])}\n\n{text}\n\n{rng.choice(SIGN_OFF[lang])}\n{signature(rng)}"
    if kind == "quoted":
        quoted = "\n".join("> " + line for line in PITCH[lang].format(n="there").split(". "))
        return f"{text}\n\n{signature(rng)}\n\n{ATTRIBUTION[lang]}\n{quoted}"
    if kind == "outlook":
        f, s, t, subj = OUTLOOK[lang]
        return (
            f"{text}\n\n{rng.choice(SIGN_OFF[lang])}\n{signature(rng)}\n\n"
            f"{f}: Alex Morgan <alex@outreach.example>\n{s}: 4 March 2025 09:12\n{t}: {rng.choice(NAMES)}\n"
            f"{subj}: Quick question\n\n{PITCH[lang].format(n='there')}"
        )
    if kind == "forwarded":
        return f"{rng.choice(GREETING[lang])}\n{rng.choice(FORWARDED[lang])} {text}\n\n{rng.choice(SIGN_OFF[lang])}"
    if kind == "mixed":
        other = "en" if lang != "en" else rng.choice(["de", "fr", "es", "pt", "nl", "it"])
        return f"{rng.choice(GREETING[other])}\n{rng.choice(PLEASANTRY[other])} {text}\n{rng.choice(SIGN_OFF[other])}"
    if kind == "pleasantry":
        return f"{rng.choice(PLEASANTRY[lang])} {text}"
    if kind == "plain":
        return "".join(c for c in text.lower() if c.isalnum() or c.isspace() or c in "@:/.")
    if kind == "typo":
        return typo(text, rng)
    raise ValueError(kind)


KINDS = ["letter", "quoted", "outlook", "forwarded", "mixed", "pleasantry", "plain", "typo"]


def rows() -> list[dict]:
    rng = random.Random(27)
    base = [
        json.loads(line) for line in (HERE / "base.jsonl").read_text(encoding="utf-8").splitlines() if line
    ]
    texts = [(r["text"], r["label"], r["language"]) for r in base]
    for written in (CORE, MORE, {"en": ENGLISH}, EXTRA):
        for lang, labels in written.items():
            for label, items in labels.items():
                texts += [(text, label, lang) for text in items]
    out, seen = [], set()
    for group, (text, label, lang) in enumerate(texts):
        variants = [text] + [dress(text, lang, rng, kind) for kind in rng.sample(KINDS, VARIANTS)]
        for variant in variants:
            if variant not in seen:
                seen.add(variant)
                out.append({"text": variant, "label": label, "language": lang, "group": group})
    return out


def main() -> None:
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows())
    for path in OUT:
        path.write_text(lines, encoding="utf-8")


if __name__ == "__main__":
    main()
