"""Phrases that decide a label outright, where wording is more reliable than a statistical model.

Matched on folded text (lower case, no accents: "désinscrire" → "desinscrire"). Order matters: an unsubscribe
request wins over everything (it must suppress the address), then out-of-office, then a booked meeting.
"""

from __future__ import annotations

import re

from imail.mail.autoreply import OOO_WORDING

UNSUBSCRIBE = re.compile(
    # English
    r"\bunsubscribe\b|\bremove me\b|"
    r"\bremove (my|this) (e-?mail |email |contact )?(address|email|e-mail|name|details|data)|"
    r"\btake (me|my (name|address|e-?mail|email)) off\b|\boff (your|the|this) (mailing |e-?mail )?list|"
    r"\bstop (e-?mailing|emailing|sending|contacting|messaging|writing to|spamming) (me|us)\b|"
    r"\b(do not|don'?t|dont|never) (contact|e-?mail|email|message|write to|reach out to) (me|us)\b|"
    r"\bopt (me )?out\b|\bno (more|further) (e-?mails|emails|messages|contact|mailings)\b|"
    r"\bdelete my (data|details|contact|information|e-?mail|email|address|personal)|"
    r"\bcease (all )?(further )?contact|"
    r"\b(delete|remove) (this|my) (e-?mail |email )?address\b|^\W*stop\W*$|"
    # German
    r"\babmelden\b|\babbestellen\b|\baustragen\b|\btragen sie mich (bitte )?aus\b|"
    r"\baus (ihrem|dem|eurem|ihren|euren) (verteiler|e-?mail-?verteiler|newsletter)|"
    r"\baus (ihrer|der|eurer) (liste|datenbank|kartei|mailingliste)\b|"
    r"\b(bitte )?keine (weiteren|weitere) (e-?mails|mails|nachrichten|werbung|kontaktaufnahme|zusendungen)\b|"
    r"\bbitte keine (e-?mails|mails|nachrichten|werbung|zusendungen)\b|"
    r"\bkeine (e-?mails|mails|nachrichten|werbung|zusendungen) mehr\b|"
    r"\bnicht mehr (kontaktieren|anschreiben|zu kontaktieren|anzuschreiben|schreiben)\b|\bhoren sie auf\b|"
    r"\bloschen sie meine\b|\bentfernen sie (mich|meine)\b|\bstreichen sie mich\b|"
    # French
    r"desabonn|desinscri|\bretirez[- ]moi\b|\bretirer (mon adresse|moi)\b|\bretirez mon adresse\b|"
    r"\bne (plus|jamais) (me )?(contacter|recevoir|ecrire|solliciter|relancer)\b|"
    r"\b(plus|pas) (de |d')(e-?mails|mails|messages|sollicitations)\b|"
    r"\bsupprime[rz]? (mes|mon) (coordonnees|adresse|donnees|e-?mail)\b|\barretez de m'|"
    # Spanish
    r"\b(dar(me|se)?|dame|dadme|denme|deme) de baja\b|^\W*baja\b|"
    r"\bno me (contacten|escriban|envien|manden|contactes|escribas|envies|mandes) mas\b|"
    r"\bno (me )?(vuelvan|vuelvas) a (escribir|contactar)|\bdej(en|a) de (enviar|escribir|mandar)(me)?\b|"
    r"\bquit(en|a)me de\b|\belimin(en|a)(me| mi| mis)\b|\bborr(en|a) (mis|mi) (datos|direccion|correo)\b"
)

MEETING_BOOKED = re.compile(
    # English: past tense booking, accepted invites, a confirmed slot
    r"\b(i|i'?ve|i have|just|we'?ve|we have|have) (just )?"
    r"(booked|scheduled|reserved|grabbed|locked in|picked)\b|"
    r"\bbooked (it|us|you|myself)\b|\bscheduled (it|us)\b|^\W*(booked|scheduled|all booked)\b|"
    r"\baccepted (the |your |our )?(calendar |meeting |google meet |zoom |teams )?invit|\binvite accepted\b|"
    r"\b(meeting|call|demo|appointment) (is )?(now )?(confirmed|booked|set)\b|"
    r"\bconfirmed for\b|\bmy acceptance\b|\bon my calendar for\b|"
    # German
    r"\b(termin|slot|call|gesprach|meeting)\b.{0,40}\b(gebucht|bestatigt|eingetragen|reserviert|steht)\b|"
    r"\beinladung (ist )?angenommen\b|\bhabe (die|ihre) einladung angenommen\b|"
    r"\bhabe .{0,40}(gebucht|reserviert|eingetragen)\b|^\W*gebucht\b|"
    # French
    r"\bj'?ai (reserve|pris rendez-vous|bloque|planifie|accepte (votre |l')invitation)|"
    r"\brendez-vous (est )?(confirme|fixe|pris)\b|\binvitation acceptee\b|\bc'?est (reserve|confirme)\b|"
    r"\breunion (planifiee|confirmee)\b|"
    # Spanish
    r"\b(he |ya )?(reservado|reserve|agende|agendado|programado)\b|\bacepte la invitacion\b|"
    r"\binvitacion aceptada\b|"
    r"\b(reunion|cita|llamada|demo)\b.{0,20}\b(confirmada|reservada|agendada|programada)\b|"
    r"\bya (esta|quedo) agendad"
)

WRONG_PERSON = re.compile(
    r"\bno longer (work|with|at|employed)\b|\bleft the (company|business|firm|organi[sz]ation)\b|"
    r"\b(not|isn'?t|am not) the right (person|contact)\b|\bwrong (person|contact)\b|"
    r"\bnicht mehr (bei|im unternehmen|in der firma|fur)\b|\bnicht zustandig\b|"
    r"\bfalsche?r? ansprechpartner\b|"
    r"\bhat das unternehmen verlassen\b|"
    r"\bne (travaille|fait) plus (dans|partie|chez)\b|\ba quitte (la societe|l'entreprise|le groupe)\b|"
    r"\bpas la bonne personne\b|\btrompe d'interlocuteur\b|"
    r"\bya no trabaj|\bno soy la persona (adecuada|correcta)\b|\bequivocado de (contacto|persona)\b|"
    r"\bdejo la (empresa|compania)\b"
)


def rule_label(folded: str) -> tuple[str, str] | None:
    """(label, matched phrase) when a rule decides, else None. `folded` is `imail.mail.inbound.fold(text)`."""
    for label, pattern in (
        ("unsubscribe_request", UNSUBSCRIBE),
        ("out_of_office", OOO_WORDING),
        ("meeting_booked", MEETING_BOOKED),
        ("wrong_person", WRONG_PERSON),
    ):
        found = pattern.search(folded)
        if found:
            return label, found.group(0).strip()
    return None
