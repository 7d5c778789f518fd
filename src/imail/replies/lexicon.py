"""Cross-language concepts for the reply model.

Words of English, German, French and Spanish that mean the same thing map to one feature ("danke", "merci",
"gracias" → thanks), so evidence learned in one language helps the others. Entries are folded (lower case, no
accents); a leading `=` means the exact word, otherwise a prefix.
"""

from __future__ import annotations

CONCEPTS = {
    "thanks": "thank thanks thx appreciat danke dank merci gracias grazie",
    "interest": (
        "interest interess interesa curious keen promising prometteur prometedor vielversprechend "
        "spannend intrigu"
    ),
    "neg": (
        "=not =no =nope =don =never =nicht =kein =keine =keinen =keinerlei =nein =pas =non =ne "
        "=jamais =nunca =ni =ningun =ninguna =aucun =aucune =sans =sin =nothing =nichts =rien =nada "
        "=won =isn =doesn =aren"
    ),
    "price": (
        "price pricing cost quote preis kosten kostet angebot tarif prix devis cout precio coste "
        "cuesta tarifa licen"
    ),
    "budget": "budget money spend dinero geld argent invest presupuest",
    "demo": "demo demonstr trial pilot essai prueba testphase vorfuhr walk",
    "talk": (
        "call chat talk speak telefon anruf anrufen gesprach sprechen austausch appel appele parler "
        "echang llamad llam hablar hablamos charla ring"
    ),
    "send": (
        "send share info detail deck overview brochure one-pager schick sende unterlag envoy "
        "documentation plaquette envi mand informaci detalle referen"
    ),
    "when": "when availab =free =time wann =zeit quand disponib libre cuando",
    "day": (
        "monday tuesday wednesday thursday friday montag dienstag mittwoch donnerstag freitag lundi "
        "mardi mercredi jeudi vendredi lunes martes miercoles jueves viernes tomorrow morgen demain "
        "manana"
    ),
    "next": "=next nachst prochain proxim =que =viene",
    "booked": (
        "booked schedul reserv confirm accept gebucht bestatig eingetragen angenommen planifi agend "
        "programad locked grabbed picked"
    ),
    "calendar": "invit calend termin agenda rendez creneau =slot cita hueco zoom teams meet",
    "away": (
        "vacation holiday =leave office =away urlaub abwesen buro elternzeit conge vacance absent "
        "bureau vacacion oficina ausen viaje travel =trip reise deplacement conferen messe salon "
        "congres sick krank maladie medic sabbatical offline unavailab indisponib parental maternit "
        "paternit"
    ),
    "return": "return =back zuruck ruckkehr retour regres vuelt volver =wieder until =bis jusqu hasta",
    "left": (
        "=left moved retired replacement verlassen rente ruhestand quitte retraite dejo jubil longer "
        "gewechselt rejoint"
    ),
    "person": (
        "person contact colleague department =head director manager =cto =ceo =cfo =coo procurement "
        "purchas =hr ansprechpartner kolleg abteilung einkauf geschaftsf leiter vorgesetz interlocut "
        "collegue =service achat directeur responsab persona companer departamento compras =jefe chef "
        "assist reception"
    ),
    "decides": (
        "responsib handle decid zustandig verantwortlich entscheid =gere occupe encarg =lleva "
        "=ressort competenc =betreu"
    ),
    "unsub": (
        "unsubscrib remove =stop delete =opt abmeld austrag verteiler losch desinscri desabonn retir "
        "supprim =baja borr elimin quit =list =liste =lista spam"
    ),
    "mail": "email e-mail =mail =mails correo courriel messag nachricht newsletter",
    "already": "already current bereits =schon actuel =deja =ya =actual existing",
    "vendor": (
        "vendor provider supplier competitor anbieter wettbewerber prestatair fournisseur concurren "
        "proveedor competencia agenc dienstleist"
    ),
    "happy": "happy satisf zufrieden content",
    "who": "=who =wer =qui =quien =which =welche",
    "later": "later spater =tard =luego despues adelante",
    "ack": (
        "=ok =okay noted =got verstanden compris entendido anotado =note =notiert alright =klar "
        "accord acuerdo =vale received erhalten recu recibido angekommen"
    ),
    "weekend": "weekend wochenende journee =dia =tag =day soiree",
    "internal": "internal intern interne internamente",
    "priority": "priorit =thema sujet tema relevan pertinen",
    "need": "=need =needs brauch =besoin necesit =bedarf",
}


def _index() -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], tuple[int, ...]]:
    exact: dict[str, list[str]] = {}
    prefixes: dict[str, list[str]] = {}
    for concept, words in CONCEPTS.items():
        for word in words.split():
            target = exact if word.startswith("=") else prefixes
            target.setdefault(word.lstrip("="), []).append(concept)
    lengths = tuple(sorted({len(p) for p in prefixes}))
    return ({k: tuple(v) for k, v in exact.items()}, {k: tuple(v) for k, v in prefixes.items()}, lengths)


_EXACT, _PREFIXES, _LENGTHS = _index()


def concepts_of(token: str) -> set[str]:
    """The concepts a folded token stands for (empty for most words)."""
    found = set(_EXACT.get(token, ()))
    for length in _LENGTHS:
        if length > len(token):
            break
        found.update(_PREFIXES.get(token[:length], ()))
    return found
