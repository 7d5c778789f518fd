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
    r"\btake (me|(my|this) (name|address|e-?mail|email|e-?mail address)) off\b|"
    r"\boff (your|the|this) (mailing |e-?mail )?(list|system|database|crm)|"
    r"\bstop (e-?mailing|emailing|sending|contacting|messaging|writing to|spamming) (me|us)\b|"
    r"\b(do not|don'?t|dont|never) (contact|e-?mail|email|message|write to|reach out to) (me|us)\b|"
    r"\bopt (me )?out\b|\bno (more|further) (e-?mails|emails|messages|contact|mailings)\b|"
    r"\bdelete my (data|details|contact|information|e-?mail|email|address|personal)|"
    r"\bstop sending (these|them|this|emails|e-?mails|messages)\b|\b(do not|don'?t) send (me|us) (any "
    r")?(more|further)\b|"
    r"\bprefer not to (receive|get) (these|your|any|more)\b|\bno (longer )?wish to (receive|be contacted)\b|"
    r"\b(do not|don'?t) want to (receive|get) (any )?(further|more|these|your) "
    r"(e-?mails|emails|messages|communication)|"
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
    r"\bloschen sie (bitte )?meine\b|"
    r"\b(kontaktieren|anschreiben|schreiben|mailen|kontakten) sie (mich|mir|uns) (bitte )?nicht "
    r"(mehr|wieder|erneut)\b|"
    r"\bentfernen sie (mich|meine)\b|\bstreichen sie mich\b|"
    # French
    r"desabonn|desinscri|\bretirez[- ]moi\b|\bretirer (mon adresse|moi)\b|\bretirez mon adresse\b|"
    r"\bne (plus|jamais) (me )?(contacter|recevoir|ecrire|solliciter|relancer)\b|"
    r"\b(plus|pas) (de |d')(e-?mails|mails|messages|sollicitations|relances)\b|"
    r"\bsupprime[rz]? (mes|mon) (coordonnees|adresse|donnees|e-?mail)\b|\barretez de m'|"
    r"\bne me (contactez|ecrivez|sollicitez|relancez|envoyez) plus\b|\bne (souhaite|veux|desire) plus (rien "
    r")?recevoir\b|"
    # Spanish
    r"\b(dar(me|se)?|dame|dadme|denme|deme) de baja\b|^\W*baja\b|"
    r"\bno me (contact|escrib|envi|mand)\w* mas\b|\bno quiero recibir mas "
    r"(correos|e-?mails|emails|mensajes)\b|"
    r"\bno (me )?(vuelv|volv)\w* a (escribir|contactar)|\bdej(en|a|ad|e) de (enviar|escribir|mandar)(me)?\b|"
    r"\bquit(en|a|ad)me de\b|\belimin(en|a|ad)(me| mi| mis)\b|\bborr(en|a|ad) (mis|mi) "
    r"(datos|direccion|correo)\b|"
    # Portuguese
    r"descadastr|\bremova-me\b|\bme remov(a|am)\b|\bremovam-me\b|\bremov(a|am|er) (o )?meu "
    r"(e-?mail|endereco|contato)|"
    r"\btir(e|em|ar) (o )?meu (e-?mail|endereco|nome|contato)\b|\bme (tire|tirem|retire|retirem) d[ae]\b|"
    r"\bpar(e|em) de (me )?(enviar|mandar|contatar|contactar|escrever)|"
    r"\bnao (me )?(contat|contact|envi|mand|escrev)\w* mais\b|\bnao quero (receber )?mais "
    r"(e-?mails|emails|mensagens)\b|"
    r"\bnao quero ser (contatad|contactad)|\bcancelar (a )?(minha )?inscricao\b|"
    r"\b(apag|exclu)\w* (os )?meus dados\b|"
    # Dutch
    r"\bafmelden\b|\buitschrijven\b|\bschrijf (me|mij) uit\b|"
    r"\bhaal (me|mij|mijn (adres|e-?mailadres|gegevens)) (alsjeblieft |aub |a\.u\.b\. |graag )?(van|uit)\b|"
    r"\bverwijder (me|mij|mijn)\b|\b(stop|hou op|houd op) met (mij |me )?(te )?(mailen|e-?mailen|berichten)|"
    r"\bgeen (e-?mails|mails|berichten|mailtjes|nieuwsbrieven) meer\b|\bneem geen contact meer\b|"
    r"\bniet meer (benaderd|gemaild|gecontacteerd)\b|\bniet (langer|meer) (te "
    r")?(mailen|e-?mailen|benaderen|contacteren)\b|"
    # Italian
    r"disiscriv|\bcancellatemi\b|\bannullare l'?iscrizione\b|"
    r"\bcancella(te|re)? (la mia iscrizione|i miei dati|il mio indirizzo)|"
    r"\b(tolga|togliete|toglietemi|rimuova|rimuovete|rimuovetemi|eliminate|elimini)\b.{0,30}"
    r"\b(lista|indirizzo|dati|mailing)\b|"
    r"\bnon (mi )?(contatt|scriv|mand|invi)\w*( mai)? piu\b|"
    r"\bnon voglio (piu )?ricevere (altre |piu )?(e-?mail|email|mail|messaggi|comunicazioni)|"
    r"\bsmett\w* di (scriver|mandar|inviar|contattar)|\bbasta (e-?mail|email|mail|messaggi)\b|"
    r"\bnon voglio essere ricontattat|"
    r"\bdiffid\w*\b.{0,40}\b(inviar|contattar|scriver|mandar)|"
    r"\bcancellazione (immediata )?(del mio indirizzo|dei miei dati|dei dati)\b|"
    # Data-protection objections in any language: withdrawn consent, an objection to processing, an erasure
    # request under the GDPR (DSGVO, RGPD, AVG, LGPD). A question about where the address came from is not one
    # (neutral).
    r"\bwithdraw (my |all )?consent\b|\bi object to (the |any )?(further )?(processing|use) of my\b|"
    r"\bwiderrufe (hiermit )?(meine "
    r")?einwilligung\b|\bwiderspreche\b.{0,60}\b(verarbeitung|nutzung|werbung)\b|"
    r"\bje (retire|revoque) mon consentement\b|\bje m'oppose\b.{0,40}\btraitement\b|"
    r"\b(retiro|revoco) mi consentimiento\b|\bme opongo al tratamiento\b|"
    r"\b(retiro|revogo) o meu consentimento\b|\b(me oponho|oponho-me) ao tratamento\b|"
    r"\btrek (hierbij )?mijn toestemming in\b|\bmaak (hierbij )?bezwaar tegen\b.{0,40}\bverwerking\b|"
    r"\brevoco (il )?(mio )?consenso\b|\bmi oppongo al trattamento\b|"
    r"\b(erase|erasure|deletion|loschung|effacement|borrado|supresion|eliminacion|exclusao|apagamento|verwijdering|"
    r"cancellazione)\b.{0,80}\b(gdpr|dsgvo|rgpd|avg|lgpd|art\.? ?17)\b|"
    r"\b(gdpr|dsgvo|rgpd|avg|lgpd|art\.? ?17)\b.{0,80}\b(erase|erasure|deletion|loschung|effacement|borrado|"
    r"supresion|eliminacion|exclusao|apagamento|verwijdering|cancellazione)\b"
)

MEETING_BOOKED = re.compile(
    # English: past tense booking, accepted invites, a confirmed slot
    r"\b(i|i'?ve|i have|just|we'?ve|we have|have) (just )?"
    r"(booked|scheduled|reserved|grabbed|locked in|picked)\b|"
    r"\bbooked (it|us|you|myself)\b|\bscheduled (it|us)\b|^\W*(booked|scheduled|all booked)\b|"
    r"\baccepted (the |your |our )?(calendar |meeting |google meet |zoom |teams )?invit|\binvite accepted\b|"
    r"\b(meeting|call|demo|appointment) (is )?(now )?(confirmed|booked|set)\b|"
    r"\bconfirmed for\b|\bmy acceptance\b|\bon my calendar for\b|"
    r"\blet'?s (find|set up|schedule|book|pick|lock in) (a |some )?(time|call|slot|meeting)\b|"
    r"\b(happy|glad|keen) to (jump|hop|get) on a (quick |short )?(call|zoom|chat)\b|"
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
    r"\bya (esta|quedo) agendad|"
    # Portuguese
    r"\baceitei o convite\b|\bconvite aceito\b|\b(reuniao|chamada|call|demo) (esta |ja esta "
    r")?(marcada|agendada|confirmada)\b|"
    r"\bmarquei\b|\bagendei\b|"
    # Dutch
    r"\b(heb de )?uitnodiging (is )?geaccepteerd\b|\b(afspraak|gesprek|call|demo) (staat|is) "
    r"(ingepland|bevestigd|geboekt)\b|"
    r"\bheb .{0,30}(geboekt|ingepland)\b|"
    # Italian
    r"\bho accettato l'?invito\b|\binvito accettato\b|"
    r"\b(riunione|chiamata|call|demo|appuntamento) (e )?(confermat|fissat|prenotat)|\bho "
    r"(prenotato|fissato)\b|"
    # a scheduling link is an offer to book: the lead agreed to meet
    r"\b(calendly\.com|cal\.com|savvycal\.com|zcal\.co|tidycal\.com)/|\bhubspot\.com/meetings/|\bbookwithme\b"
)

WRONG_PERSON = re.compile(
    r"\bno longer (work|with|at|employed)\b|\bleft the (company|business|firm|organi[sz]ation)\b|"
    r"\b(hasn'?t|has not|haven'?t|have not) (worked|been) (here|with us|with the company)\b|"
    r"\b(doesn'?t|does not) work (here|for us|with us) any ?more\b|\bbei mir falsch\b|"
    r"\b(not|isn'?t|am not) the right (person|contact)\b|\bwrong (person|contact)\b|"
    r"\bnicht mehr (bei|im unternehmen|in der firma|fur)\b|\bnicht zustandig\b|"
    r"\bfalsche?r? ansprechpartner\b|"
    r"\bhat das unternehmen verlassen\b|"
    r"\bne (travaille|fait) plus (dans|partie|chez)\b|\ba quitte (la societe|l'entreprise|le groupe)\b|"
    r"\bpas la bonne personne\b|\btrompe d'interlocuteur\b|"
    r"\bya no trabaj|\bno soy la persona (adecuada|correcta)\b|\bequivocado de (contacto|persona)\b|"
    r"\bdejo la (empresa|compania)\b|"
    r"\bnao (trabalha|trabalho) mais\b|\bnao sou a pessoa (certa|indicada|correta)\b|\b(pessoa|contato) "
    r"errad[ao]\b|"
    r"\bsai(u)? da empresa\b|"
    r"\bwerkt? (hier |daar )?niet meer\b|\bniet de juiste (persoon|contactpersoon)\b|\bverkeerde "
    r"(persoon|contactpersoon)\b|"
    r"\bniet meer (werkzaam|in dienst)\b|"
    r"\bnon lavora piu\b|\bnon sono la persona giusta\b|\bpersona sbagliata\b|\bha(o)? lasciato l'?azienda\b"
)


def rule_label(folded: str) -> tuple[str, str] | None:
    """(label, matched phrase) when a rule decides, else None. `folded` is `imail.mail.parsing.fold(text)`."""
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
