"""Cross-language concepts for the reply model.

Words of English, German, French, Spanish, Portuguese, Dutch and Italian that mean the same thing map to one
feature ("danke", "merci", "gracias", "obrigado", "bedankt" → thanks), so evidence learned in one language
helps the others. Entries are folded (lower case, no accents); a leading `=` means the exact word, otherwise a
prefix.
"""

from __future__ import annotations

CONCEPTS = {
    "thanks": "thank thanks thx appreciat danke dank merci gracias grazie obrigad bedankt =dank =dankje "
    "=dankjewel",
    "interest": (
        "interest interess interesa curious keen promising prometteur prometedor vielversprechend "
        "spannend intrigu interessa interesse interessant veelbelovend promett promissor incurios"
    ),
    "neg": (
        "=not =no =nope =don =never =nicht =kein =keine =keinen =keinerlei =nein =pas =non =ne "
        "=jamais =nunca =ni =ningun =ninguna =aucun =aucune =sans =sin =nothing =nichts =rien =nada "
        "=won =isn =doesn =aren =nao =niet =geen =nee =nooit =non =nessun =nessuna =nada =nunca =nenhum "
        "=nenhuma =niets =niente =nulla"
    ),
    "price": (
        "price pricing cost quote preis kosten kostet angebot tarif prix devis cout precio coste "
        "cuesta tarifa licen preco prijs prijzen kost offerte prezzo prezzi costo preventivo orcamento "
        "investiment"
    ),
    "budget": "budget money spend dinero geld argent invest presupuest orcament begroting",
    "demo": "demo demonstr trial pilot essai prueba testphase vorfuhr walk demonstra proefversie prova teste",
    "talk": (
        "call chat talk speak telefon anruf anrufen gesprach sprechen austausch appel appele parler "
        "echang llamad llam hablar hablamos charla ring conversa falar ligar ligacao chamada bellen "
        "belletje gesprek praten parlare chiamat sentirci telefonat"
    ),
    "send": (
        "send share info detail deck overview brochure one-pager schick sende unterlag envoy "
        "documentation plaquette envi mand informaci detalle referen envie enviar mande mandar stuur sturen "
        "mandi inviare mandate informac informatie informazion dettagl brochure"
    ),
    "when": "when availab =free =time wann =zeit quand disponib libre cuando quando wanneer =vrij "
    "disponivel libero",
    "day": (
        "monday tuesday wednesday thursday friday montag dienstag mittwoch donnerstag freitag lundi "
        "mardi mercredi jeudi vendredi lunes martes miercoles jueves viernes tomorrow morgen demain "
        "manana segunda terca quarta quinta sexta maandag dinsdag woensdag donderdag vrijdag lunedi martedi "
        "mercoledi giovedi venerdi amanha =morgen domani"
    ),
    "next": "=next nachst prochain proxim =que =viene proxima volgende prossim",
    "booked": (
        "booked schedul reserv confirm accept gebucht bestatig eingetragen angenommen planifi agend "
        "programad locked grabbed picked agendad marcad geaccepteerd ingepland geboekt accettat fissat "
        "prenotat confermat"
    ),
    "calendar": "invit calend termin agenda rendez creneau =slot cita hueco zoom teams meet convite agenda "
    "uitnodiging afspraak invito appuntament calendario calendly",
    "away": (
        "vacation holiday =leave office =away urlaub abwesen buro elternzeit conge vacance absent "
        "bureau vacacion oficina ausen viaje travel =trip reise deplacement conferen messe salon "
        "congres sick krank maladie medic sabbatical offline unavailab indisponib parental maternit "
        "paternit ferias escritorio ausente licenca vakantie kantoor afwezig verlof ferie ufficio assente "
        "congedo vacanza"
    ),
    "return": "return =back zuruck ruckkehr retour regres vuelt volver =wieder until =bis jusqu hasta volto "
    "regress terug rientr ritorno =tot =fino =ate",
    "left": (
        "=left moved retired replacement verlassen rente ruhestand quitte retraite dejo jubil longer "
        "gewechselt rejoint saiu vertrokken lavora"
    ),
    "person": (
        "person contact colleague department =head director manager =cto =ceo =cfo =coo procurement "
        "purchas =hr ansprechpartner kolleg abteilung einkauf geschaftsf leiter vorgesetz interlocut "
        "collegue =service achat directeur responsab persona companer departamento compras =jefe chef "
        "assist reception pessoa colega departamento persoon collega afdeling inkoop persona responsabil"
    ),
    "decides": (
        "responsib handle decid zustandig verantwortlich entscheid =gere occupe encarg =lleva "
        "=ressort competenc =betreu responsav cuida verantwoordelijk beslist occupo decide"
    ),
    "unsub": (
        "unsubscrib remove =stop delete =opt abmeld austrag verteiler losch desinscri desabonn retir "
        "supprim =baja borr elimin quit =list =liste =lista spam remov descadastr apag tirem verwijder "
        "afmeld uitschrijv rimuov cancell disiscriv tolg"
    ),
    "mail": "email e-mail =mail =mails correo courriel messag nachricht newsletter mensag bericht berichten "
    "messaggi",
    "already": "already current bereits =schon actuel =deja =ya =actual existing =gia",
    "vendor": (
        "vendor provider supplier competitor anbieter wettbewerber prestatair fournisseur concurren "
        "proveedor competencia agenc dienstleist fornecedor leverancier fornitor"
    ),
    "happy": "happy satisf zufrieden content satisfeit tevreden soddisfatt",
    "who": "=who =wer =qui =quien =which =welche =quem =wie =chi",
    "later": "later spater =tard =luego despues adelante depois =later =dopo",
    "ack": (
        "=ok =okay noted =got verstanden compris entendido anotado =note =notiert alright =klar "
        "accord acuerdo =vale received erhalten recu recibido angekommen recebido ontvangen ricevuto "
        "anotado genoteerd begrepen capito entendido =certo"
    ),
    "weekend": "weekend wochenende journee =dia =tag =day soiree",
    "internal": "internal intern interne internamente interno intern interna",
    "priority": "priorit =thema sujet tema relevan pertinen",
    "period": (
        "spring printemps primavera voorjaar fruhling fruhjahr summer =ete sommer verano =verao zomer "
        "=estate autumn "
        "=fall herbst automne otono outono najaar autunno winter hiver invierno inverno quarter quartal "
        "trimestr "
        "kwartaal =q0 semest halbjahr january januar janvier enero janeiro januari gennaio september "
        "septembre "
        "septiembre setembro settembre fiscal geschaftsjahr exercice ejercicio =anno =jaar =jahr =year "
        "=annee =ano"
    ),
    "again": (
        "=again nochmal erneut =wieder nouveau =novo =nuevo opnieuw =weer =nuovo recontact ricontatt volte "
        "vuelv "
        "reach circle =revisit =retomar riprend hervat"
    ),
    "moment": "moment momento timing zeitpunkt =momentan =ahora =agora =adesso =nu =now =maintenant =jetzt",
    "need": "=need =needs brauch =besoin necesit =bedarf precis nodig =serve bisogno",
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
