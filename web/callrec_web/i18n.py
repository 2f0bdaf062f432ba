"""Languages of the pages callers read (the privacy notice and the record of processing).

The rest of the web UI is English for now (its texts are in templates/messages.tpl); issue 7
translates it. This module is the small, typed piece that issue 7 can grow: the negotiation of
the language (a `?lang=` choice first, then the browser's Accept-Language) and a text table
per language, looked up by key with {name} placeholders. A text missing in one language is a
test failure (tests/web/test_web_info.py), never a silent fallback on the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from callrec_web.translate import fill

LANGUAGES = ("fr", "en")
# French first when the browser names neither: the appliance is built for offices under the
# French regulator (CNIL), so the people pointed to the notice are most likely French speakers.
DEFAULT_LANGUAGE = "fr"
# Each language's name in that language, for the switch (a reader looks for their own).
LANGUAGE_NAMES: Mapping[str, str] = {"fr": "Français", "en": "English"}

_TAG_RE = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*|\*")
_MAX_HEADER = 512  # a longer Accept-Language is not from a real browser; only its start is read


def accepted(header: str | None) -> list[str]:
    """The primary language subtags of an Accept-Language header, best first; q=0 dropped."""
    if not header:
        return []
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:_MAX_HEADER].split(",")):
        tag, _, params = part.strip().partition(";")
        tag = tag.strip()
        if not _TAG_RE.fullmatch(tag):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # also rejects nan
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, tag.split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(requested: str | None, accept_language: str | None) -> str:
    """The language of a page: `requested` (?lang=) if we have it, else the browser's best."""
    if requested in LANGUAGES:
        return str(requested)
    for tag in accepted(accept_language):
        if tag in LANGUAGES:
            return tag
        if tag == "*":
            break
    return DEFAULT_LANGUAGE


class Catalog:
    """The texts of one language: `catalog("key", name=value)`."""

    def __init__(self, lang: str) -> None:
        if lang not in TEXTS:
            raise ValueError(f"unknown language {lang!r}")
        self.lang = lang
        self.texts = TEXTS[lang]

    def __call__(self, key: str, /, **values: object) -> str:
        return fill(self.texts.get(key, key), values)


def catalog(lang: str) -> Catalog:
    return Catalog(lang)


# -- the texts --------------------------------------------------------------------------------
# Keys are grouped by page. Values are plain text (the templates escape them); {name} is filled
# in by the code. Keep the two languages in the same order so that a reviewer reads them side
# by side.

_EN: dict[str, str] = {
    # page chrome (layout.tpl reads these through its `ui` value)
    "ui_skip": "Skip to main content",
    "ui_footer": "This appliance records telephone calls (audio), after an announcement tells "
                 "the other party. Recordings are personal data: listen, download and erase them "
                 "only for their purpose.",
    "ui_privacy_link": "Privacy notice",
    "lang_switch": "Language",
    "print": "Print",
    # values that stand in for an empty [controller] field
    "not_filled": "The office has not filled this in.",
    "no_dpo": "No data protection officer is named on this appliance: write to the controller.",
    "this_office": "This office",
    # the defaults of [controller] (config.py), translated: shown when the office kept them
    "default_purposes": "Quality of service and staff training; proof of what was agreed by "
                        "phone.",
    "default_legal_basis": "Legitimate interest of the controller (GDPR art. 6(1)(f)).",
    "default_recipients": "Authorised staff of the controller only; no transfer outside the EU.",
    "default_supervisory_authority": "CNIL, 3 place de Fontenoy, TSA 80715, 75334 Paris Cedex "
                                     "07, https://www.cnil.fr",
    # names of the [controller] fields, for the administrators' warning and the record
    "field_name": "Controller",
    "field_address": "Address",
    "field_contact": "Contact for privacy requests",
    "field_dpo_contact": "Data protection officer",
    "field_purposes": "Purposes",
    "field_legal_basis": "Legal basis",
    "field_recipients": "Recipients",
    "field_supervisory_authority": "Supervisory authority",
    "missing_warning": "The [controller] section of the configuration ({source}) leaves these "
                       "empty: {fields}. The privacy notice tells callers that the office has "
                       "not filled them in. Set them in the configuration and restart callrec.",
    # /privacy
    "notice_title": "Privacy notice: recording of telephone calls",
    "notice_intro": "{controller} records telephone calls on this line with a call recorder in "
                    "its office. An announcement at the start of each call tells you so. This "
                    "page says what is recorded, why, for how long and who receives it, how to "
                    "refuse, and how to exercise your rights.",
    "who_h": "Who records",
    "what_h": "What is recorded",
    "what_audio": "The conversation (audio), from the end of the announcement until the call "
                  "ends.",
    "what_numbers": "The telephone numbers of the call: the caller's number as the network "
                    "shows it, or the number dialled from the office.",
    "what_name": "The caller's name, when the network sends it with the number.",
    "what_times": "The date, time and duration of the call, the line and its direction "
                  "(incoming or outgoing).",
    "what_proof": "Proof that the announcement was played: which message, when, and whether "
                  "it was heard in full.",
    "what_not": "Nothing is recorded if the call ends during the announcement, if it is "
                "refused (below), or if the number is on the do-not-record list.",
    "why_h": "Why, and on what legal basis",
    "retention_h": "How long",
    "retention_days": "Recordings are erased automatically {days} days after the call.",
    "retention_forever": "The office has chosen to keep recordings without a time limit.",
    "retention_hold": "A recording may be kept longer only while a request about it is being "
                      "handled (for example a restriction you asked for).",
    "recipients_h": "Who receives the recordings",
    "transfers_none": "The recorder sends nothing outside the office: recordings stay on the "
                      "appliance, and are not transferred outside the European Union.",
    "refuse_h": "Refusing the recording",
    "refuse_key": "Press the {key} key on your phone while the announcement plays: nothing of "
                  "that call is recorded. The appliance keeps only a note that the call was "
                  "refused (time, line and a pseudonym of your number, never the number itself), "
                  "as evidence that your refusal was respected.",
    "refuse_no_key": "This line does not offer a key to refuse during the announcement. You may "
                     "end the call, or object as described below.",
    "object": "To object for good, ask the office (contact below) to put your number on its "
              "do-not-record list: later calls from or to that number are neither announced "
              "nor recorded.",
    "rights_h": "Your rights",
    "right_access": "Access: to know whether calls of yours are recorded, and to receive "
                    "information about them.",
    "right_copy": "Copy: to receive your recordings and their details in a common format "
                  "(portability).",
    "right_rectification": "Rectification: to have a wrong number, name or note corrected.",
    "right_erasure": "Erasure: to have your recordings deleted.",
    "right_restriction": "Restriction: to have your recordings kept but not listened to, for "
                         "example while a dispute is settled.",
    "right_objection": "Objection: to have your calls no longer recorded (do-not-record list).",
    "how_h": "How to exercise them",
    "how_contact": "Write to or call the contact for privacy requests, giving the telephone "
                   "number concerned. The office answers within one month (GDPR art. 12). It "
                   "may ask you to show that the number is yours, so that nobody else receives "
                   "your recordings.",
    "complain_h": "Making a complaint",
    "complain": "If you think your rights are not respected, you may complain to the "
                "supervisory authority:",
    "notice_generated": "This notice is generated from the recorder's configuration.",
    "record_link": "Record of processing (GDPR art. 30), for the office",
    # /privacy/record
    "record_title": "Record of processing activities",
    "record_subtitle": "Recording of telephone calls — GDPR article 30",
    "record_generated": "Generated on {date} from the configuration {source} and the state of "
                        "this recorder (callrec {version}). It changes when the configuration "
                        "changes: print it again after each change.",
    "record_why_private": "This record is for the controller and the supervisory authority "
                          "(art. 30(4)); callers read the privacy notice.",
    "rec_controller_h": "Controller",
    "rec_purposes_h": "Purposes and legal basis",
    "rec_persons_h": "Categories of data subjects",
    "person_callers": "Callers (people who call the office).",
    "person_called": "Called parties (people the office calls).",
    "person_staff": "Staff of the controller: as parties to recorded calls, and as users of the "
                    "recorder (accounts, access log).",
    "rec_data_h": "Categories of personal data",
    "data_audio": "Audio of the calls, from the end of the announcement.",
    "data_numbers": "Telephone numbers (caller ID, dialled digits).",
    "data_names": "Names sent by the network with the caller ID.",
    "data_times": "Date, time, duration, line and direction of each call; how it ended.",
    "data_proof": "Proof of the announcement: message, SHA-256 of the message, time, played in "
                  "full or not.",
    "data_evidence": "Evidence of refused calls and honoured objections: time, line, direction, "
                     "message, and the number only as a keyed pseudonym.",
    "data_donotrecord": "The do-not-record list: numbers and prefixes of people who objected.",
    "data_accounts": "Accounts of the recorder: user names, roles, scrypt password hashes, API "
                     "token hashes.",
    "data_log": "Access log: who logged in, listened, downloaded, erased or changed what, "
                "when and why, with the IP address of logins; numbers only as pseudonyms.",
    "rec_recipients_h": "Recipients",
    "rec_transfers_h": "Transfers to third countries",
    "rec_transfers": "None. The recorder transmits no recording; it is reached only through its "
                     "own web interface.",
    "rec_retention_h": "Time limits for erasure",
    "rec_retention_days": "Recordings: erased automatically {days} days after the call (checked "
                          "every {minutes} minutes, and at start).",
    "rec_retention_forever": "Recordings: kept without an age limit (retention.keep_forever = "
                             "true, an explicit choice of the office).",
    "rec_retention_space": "Older recordings are also erased first when space runs short "
                           "({space}).",
    "rec_quota": "a quota of {quota} GB per volume and {free} MB kept free",
    "rec_free": "{free} MB kept free on each volume",
    "rec_retention_exempt": "Recordings under restriction or being recorded are never erased "
                            "by retention.",
    "rec_retention_log": "Access log: {days} days (whole months, the newest always kept).",
    "rec_retention_accounts": "Accounts: until an administrator deletes them.",
    "rec_security_h": "Technical and organisational security measures",
    "sec_encrypt_on": "Encryption at rest: audio, details and index sealed with AES-256-GCM, "
                      "one key per recording, wrapped by the device key. Erasure destroys the "
                      "recording's key first, so copies left in flash memory stay unreadable.",
    "sec_encrypt_off": "Encryption at rest is OFF (storage.encrypt = false): anyone who reads "
                       "the SD card or the USB stick hears the recordings.",
    "sec_binding_bound": "The device key is bound to this recorder's hardware ({kind}): the SD "
                         "card read in another computer opens no recording.",
    "sec_binding_none": "The device key is NOT bound to the hardware (storage.key_binding = "
                        "{setting}): the SD card read in another computer opens every "
                        "recording on it.",
    "binding_otp": "the Raspberry Pi's OTP key",
    "binding_file": "a secret file on another medium",
    "sec_usb": "Recordings may go to a USB stick; the keys never do, so the stick alone opens "
               "nothing.",
    "sec_access": "Access control: personal accounts, no default account; each role grants "
                  "only what it needs (below), enforced by the server on every request.",
    "sec_passwords": "Passwords of 10 characters or more, stored as scrypt hashes; logins "
                     "slowed down after repeated failures.",
    "sec_sessions": "Sessions held on the recorder, renewed at login, ended after {idle} "
                    "minutes without activity and {hours} hours in any case; every change "
                    "needs an anti-forgery token; pages with personal data are never cached.",
    "sec_tls_on": "The web interface is served over HTTPS (TLS).",
    "sec_tls_local": "The web interface listens on {host} only (this machine), without TLS: it "
                     "must be reached through an encrypted channel (SSH tunnel, HTTPS proxy).",
    "sec_tls_off": "The web interface is served WITHOUT TLS on {host}: passwords and recordings "
                   "cross the local network unencrypted.",
    "sec_log_on": "Access log: every login, playback, download, erasure and account change, "
                  "append-only and hash-chained, sealed with a key of the recorder, so that an "
                  "edit or a deletion is detected (callrec audit verify); kept {days} days.",
    "sec_log_off": "The access log is not available to the web interface of this instance.",
    "sec_announcement": "An announcement is played before any recording; no announcement, no "
                        "recording.",
    "sec_refusal_on": "Callers may refuse during the announcement with the {key} key.",
    "sec_refusal_off": "No refusal key is configured (privacy.refusal_key is empty).",
    "sec_staff": "Staff can keep a call out of recording with the privacy button{prefix}.",
    "sec_prefix": " or by dialling {prefix} before the number",
    "sec_never": "This line ({line}) is set never to be recorded.",
    "sec_minimise": "No phone number in file names or system logs; the access log holds numbers "
                    "only as keyed pseudonyms.",
    "rec_roles_h": "Roles and who holds them",
    "role_col": "Role",
    "may_col": "May",
    "accounts_col": "Accounts",
    "no_account": "none",
    "listeners": "Accounts that can hear recordings: {names}.",
    "role_admin": "Administrator",
    "role_technician": "Technician",
    "role_supervisor": "Supervisor",
    "role_privacy_officer": "Privacy officer",
    "perm_recordings.list": "list recordings",
    "perm_recordings.listen": "listen to and download recordings",
    "perm_recordings.erase": "erase recordings",
    "perm_status.view": "see the line status",
    "perm_users.manage": "manage accounts (only with rights they hold)",
    "perm_tokens.own": "create API tokens",
    "perm_audit.view": "read the access log",
    "perm_processing.record": "read this record",
    "perm_subjects.manage": "handle requests about a person",
}

_FR: dict[str, str] = {
    "ui_skip": "Aller au contenu principal",
    "ui_footer": "Cet appareil enregistre des appels téléphoniques (audio), après un message qui "
                 "en informe l’interlocuteur. Les enregistrements sont des données personnelles : "
                 "ne les écoutez, téléchargez et effacez que pour leur finalité.",
    "ui_privacy_link": "Information sur la protection des données",
    "lang_switch": "Langue",
    "print": "Imprimer",
    "not_filled": "Le bureau ne l’a pas encore renseigné.",
    "no_dpo": "Aucun délégué à la protection des données n’est indiqué sur cet appareil : "
              "écrivez au responsable du traitement.",
    "this_office": "Ce bureau",
    "default_purposes": "Qualité du service et formation du personnel ; preuve de ce qui a été "
                        "convenu par téléphone.",
    "default_legal_basis": "Intérêt légitime du responsable du traitement (RGPD art. 6.1.f).",
    "default_recipients": "Le personnel habilité du responsable du traitement uniquement ; "
                          "aucun transfert hors de l’UE.",
    "default_supervisory_authority": "CNIL, 3 place de Fontenoy, TSA 80715, 75334 Paris Cedex "
                                     "07, https://www.cnil.fr",
    "field_name": "Responsable du traitement",
    "field_address": "Adresse",
    "field_contact": "Contact pour les demandes",
    "field_dpo_contact": "Délégué à la protection des données",
    "field_purposes": "Finalités",
    "field_legal_basis": "Base légale",
    "field_recipients": "Destinataires",
    "field_supervisory_authority": "Autorité de contrôle",
    "missing_warning": "La section [controller] de la configuration ({source}) laisse vides : "
                       "{fields}. La page d’information indique aux appelants que le bureau ne "
                       "les a pas renseignés. Renseignez-les dans la configuration et "
                       "redémarrez callrec.",
    "notice_title": "Information : enregistrement des appels téléphoniques",
    "notice_intro": "{controller} enregistre les appels téléphoniques de cette ligne avec un "
                    "enregistreur installé dans ses locaux. Un message au début de chaque appel "
                    "vous en informe. Cette page indique ce qui est enregistré, pourquoi, pour "
                    "combien de temps et qui le reçoit, comment refuser, et comment exercer vos "
                    "droits.",
    "who_h": "Qui enregistre",
    "what_h": "Ce qui est enregistré",
    "what_audio": "La conversation (audio), de la fin du message d’information à la fin de "
                  "l’appel.",
    "what_numbers": "Les numéros de l’appel : celui de l’appelant tel que le réseau le "
                    "présente, ou le numéro composé depuis le bureau.",
    "what_name": "Le nom de l’appelant, lorsque le réseau le transmet avec le numéro.",
    "what_times": "La date, l’heure et la durée de l’appel, la ligne et le sens de l’appel "
                  "(entrant ou sortant).",
    "what_proof": "La preuve que le message a été diffusé : quel message, quand, et s’il a été "
                  "entendu en entier.",
    "what_not": "Rien n’est enregistré si l’appel se termine pendant le message, s’il est "
                "refusé (ci-dessous), ou si le numéro figure sur la liste d’opposition.",
    "why_h": "Pourquoi, et sur quelle base légale",
    "retention_h": "Combien de temps",
    "retention_days": "Les enregistrements sont effacés automatiquement {days} jours après "
                      "l’appel.",
    "retention_forever": "Le bureau a choisi de conserver les enregistrements sans limite de "
                         "durée.",
    "retention_hold": "Un enregistrement n’est conservé plus longtemps que pendant le traitement "
                      "d’une demande qui le concerne (par exemple une limitation que vous avez "
                      "demandée).",
    "recipients_h": "Qui reçoit les enregistrements",
    "transfers_none": "L’enregistreur n’envoie rien hors du bureau : les enregistrements restent "
                      "sur l’appareil et ne sont pas transférés hors de l’Union européenne.",
    "refuse_h": "Refuser l’enregistrement",
    "refuse_key": "Appuyez sur la touche {key} de votre téléphone pendant le message : rien de "
                  "cet appel n’est enregistré. L’appareil garde seulement une trace du refus "
                  "(heure, ligne et un pseudonyme de votre numéro, jamais le numéro lui-même), "
                  "preuve que votre refus a été respecté.",
    "refuse_no_key": "Cette ligne ne propose pas de touche pour refuser pendant le message. Vous "
                     "pouvez mettre fin à l’appel, ou vous opposer comme indiqué ci-dessous.",
    "object": "Pour vous opposer durablement, demandez au bureau (contact ci-dessous) d’inscrire "
              "votre numéro sur sa liste d’opposition : les appels suivants depuis ou vers ce "
              "numéro ne sont ni annoncés ni enregistrés.",
    "rights_h": "Vos droits",
    "right_access": "Accès : savoir si des appels vous concernant sont enregistrés, et recevoir "
                    "des informations à leur sujet.",
    "right_copy": "Copie : recevoir vos enregistrements et leurs détails dans un format courant "
                  "(portabilité).",
    "right_rectification": "Rectification : faire corriger un numéro, un nom ou une note "
                           "erronés.",
    "right_erasure": "Effacement : faire supprimer vos enregistrements.",
    "right_restriction": "Limitation : faire conserver vos enregistrements sans qu’ils soient "
                         "écoutés, par exemple le temps de régler un litige.",
    "right_objection": "Opposition : ne plus être enregistré (liste d’opposition).",
    "how_h": "Comment les exercer",
    "how_contact": "Écrivez ou téléphonez au contact pour les demandes en indiquant le numéro "
                   "de téléphone concerné. Le bureau répond dans un délai d’un mois (RGPD "
                   "art. 12). Il peut vous demander de montrer que ce numéro est le vôtre, afin "
                   "que personne d’autre ne reçoive vos enregistrements.",
    "complain_h": "Faire une réclamation",
    "complain": "Si vous estimez que vos droits ne sont pas respectés, vous pouvez adresser une "
                "réclamation à l’autorité de contrôle :",
    "notice_generated": "Cette information est produite à partir de la configuration de "
                        "l’enregistreur.",
    "record_link": "Registre des traitements (RGPD art. 30), pour le bureau",
    "record_title": "Registre des activités de traitement",
    "record_subtitle": "Enregistrement des appels téléphoniques — article 30 du RGPD",
    "record_generated": "Produit le {date} à partir de la configuration {source} et de l’état "
                        "de cet enregistreur (callrec {version}). Il change avec la "
                        "configuration : imprimez-le à nouveau après chaque modification.",
    "record_why_private": "Ce registre est destiné au responsable du traitement et à l’autorité "
                          "de contrôle (art. 30.4) ; les appelants lisent la page d’information.",
    "rec_controller_h": "Responsable du traitement",
    "rec_purposes_h": "Finalités et base légale",
    "rec_persons_h": "Catégories de personnes concernées",
    "person_callers": "Les appelants (personnes qui appellent le bureau).",
    "person_called": "Les personnes appelées par le bureau.",
    "person_staff": "Le personnel du responsable du traitement : comme interlocuteur des appels "
                    "enregistrés, et comme utilisateur de l’enregistreur (comptes, journal des "
                    "accès).",
    "rec_data_h": "Catégories de données personnelles",
    "data_audio": "L’audio des appels, à partir de la fin du message d’information.",
    "data_numbers": "Les numéros de téléphone (présentation du numéro, chiffres composés).",
    "data_names": "Les noms transmis par le réseau avec le numéro.",
    "data_times": "Date, heure, durée, ligne et sens de chaque appel ; manière dont il s’est "
                  "terminé.",
    "data_proof": "La preuve du message d’information : message, empreinte SHA-256, heure, "
                  "diffusé en entier ou non.",
    "data_evidence": "La trace des appels refusés et des oppositions respectées : heure, ligne, "
                     "sens, message, et le numéro seulement sous forme de pseudonyme à clé.",
    "data_donotrecord": "La liste d’opposition : numéros et préfixes des personnes qui se sont "
                        "opposées.",
    "data_accounts": "Les comptes de l’enregistreur : identifiants, rôles, empreintes scrypt "
                     "des mots de passe, empreintes des jetons d’API.",
    "data_log": "Le journal des accès : qui s’est connecté, a écouté, téléchargé, effacé ou "
                "modifié quoi, quand et pourquoi, avec l’adresse IP des connexions ; les "
                "numéros seulement sous forme de pseudonymes.",
    "rec_recipients_h": "Destinataires",
    "rec_transfers_h": "Transferts vers des pays tiers",
    "rec_transfers": "Aucun. L’enregistreur ne transmet aucun enregistrement ; on n’y accède "
                     "que par sa propre interface web.",
    "rec_retention_h": "Délais d’effacement",
    "rec_retention_days": "Enregistrements : effacés automatiquement {days} jours après l’appel "
                          "(vérifié toutes les {minutes} minutes et au démarrage).",
    "rec_retention_forever": "Enregistrements : conservés sans limite de durée "
                             "(retention.keep_forever = true, choix explicite du bureau).",
    "rec_retention_space": "Les plus anciens sont aussi effacés en premier quand la place "
                           "manque ({space}).",
    "rec_quota": "un quota de {quota} Go par support et {free} Mo gardés libres",
    "rec_free": "{free} Mo gardés libres sur chaque support",
    "rec_retention_exempt": "Les enregistrements limités ou en cours ne sont jamais effacés par "
                            "la durée de conservation.",
    "rec_retention_log": "Journal des accès : {days} jours (par mois entiers, le plus récent "
                         "toujours conservé).",
    "rec_retention_accounts": "Comptes : jusqu’à leur suppression par un administrateur.",
    "rec_security_h": "Mesures de sécurité techniques et organisationnelles",
    "sec_encrypt_on": "Chiffrement au repos : audio, détails et index scellés en AES-256-GCM, "
                      "une clé par enregistrement, protégée par la clé de l’appareil. "
                      "L’effacement détruit d’abord la clé de l’enregistrement : les copies "
                      "restées dans la mémoire flash demeurent illisibles.",
    "sec_encrypt_off": "Le chiffrement au repos est DÉSACTIVÉ (storage.encrypt = false) : "
                       "quiconque lit la carte SD ou la clé USB entend les enregistrements.",
    "sec_binding_bound": "La clé de l’appareil est liée au matériel de cet enregistreur "
                         "({kind}) : la carte SD lue dans un autre ordinateur n’ouvre aucun "
                         "enregistrement.",
    "sec_binding_none": "La clé de l’appareil n’est PAS liée au matériel (storage.key_binding = "
                        "{setting}) : la carte SD lue dans un autre ordinateur ouvre tous les "
                        "enregistrements qu’elle contient.",
    "binding_otp": "la clé OTP du Raspberry Pi",
    "binding_file": "un fichier secret sur un autre support",
    "sec_usb": "Les enregistrements peuvent aller sur une clé USB ; les clés de chiffrement "
               "jamais : la clé USB seule n’ouvre rien.",
    "sec_access": "Contrôle d’accès : comptes personnels, aucun compte par défaut ; chaque rôle "
                  "n’accorde que ce dont il a besoin (ci-dessous), vérifié par le serveur à "
                  "chaque requête.",
    "sec_passwords": "Mots de passe d’au moins 10 caractères, conservés sous forme d’empreintes "
                     "scrypt ; connexions ralenties après des échecs répétés.",
    "sec_sessions": "Sessions gardées sur l’enregistreur, renouvelées à la connexion, closes "
                    "après {idle} minutes d’inactivité et {hours} heures en tout cas ; chaque "
                    "modification exige un jeton anti-falsification ; les pages contenant des "
                    "données personnelles ne sont jamais mises en cache.",
    "sec_tls_on": "L’interface web est servie en HTTPS (TLS).",
    "sec_tls_local": "L’interface web n’écoute que sur {host} (cette machine), sans TLS : on "
                     "doit y accéder par un canal chiffré (tunnel SSH, proxy HTTPS).",
    "sec_tls_off": "L’interface web est servie SANS TLS sur {host} : mots de passe et "
                   "enregistrements circulent en clair sur le réseau local.",
    "sec_log_on": "Journal des accès : chaque connexion, écoute, téléchargement, effacement et "
                  "modification de compte, en ajout seul et chaîné par empreintes, scellé par "
                  "une clé de l’enregistreur, de sorte qu’une modification ou une suppression "
                  "est détectée (callrec audit verify) ; conservé {days} jours.",
    "sec_log_off": "Le journal des accès n’est pas disponible pour l’interface web de cette "
                   "instance.",
    "sec_announcement": "Un message d’information est diffusé avant tout enregistrement ; sans "
                        "message, pas d’enregistrement.",
    "sec_refusal_on": "Les appelants peuvent refuser pendant le message avec la touche {key}.",
    "sec_refusal_off": "Aucune touche de refus n’est configurée (privacy.refusal_key est vide).",
    "sec_staff": "Le personnel peut soustraire un appel à l’enregistrement avec le bouton de "
                 "confidentialité{prefix}.",
    "sec_prefix": " ou en composant {prefix} avant le numéro",
    "sec_never": "Cette ligne ({line}) est réglée pour n’être jamais enregistrée.",
    "sec_minimise": "Aucun numéro de téléphone dans les noms de fichiers ni dans les journaux "
                    "système ; le journal des accès ne contient les numéros que sous forme de "
                    "pseudonymes à clé.",
    "rec_roles_h": "Rôles et titulaires",
    "role_col": "Rôle",
    "may_col": "Peut",
    "accounts_col": "Comptes",
    "no_account": "aucun",
    "listeners": "Comptes qui peuvent écouter les enregistrements : {names}.",
    "role_admin": "Administrateur",
    "role_technician": "Technicien",
    "role_supervisor": "Superviseur",
    "role_privacy_officer": "Référent protection des données",
    "perm_recordings.list": "lister les enregistrements",
    "perm_recordings.listen": "écouter et télécharger les enregistrements",
    "perm_recordings.erase": "effacer les enregistrements",
    "perm_status.view": "voir l’état de la ligne",
    "perm_users.manage": "gérer les comptes (seulement avec les droits qu’il détient)",
    "perm_tokens.own": "créer des jetons d’API",
    "perm_audit.view": "consulter le journal des accès",
    "perm_processing.record": "consulter ce registre",
    "perm_subjects.manage": "traiter les demandes concernant une personne",
}

TEXTS: Mapping[str, Mapping[str, str]] = {"en": _EN, "fr": _FR}
