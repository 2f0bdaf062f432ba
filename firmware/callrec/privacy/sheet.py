"""The papers a person gets: the information sheet of an export and the erasure receipt.

Plain HTML, printable, one file with no outside resource (it is opened from a ZIP on the
person's computer), French then English. Pure: the caller gives the configuration, the
recordings and the access log entries; nothing here reads a file or the clock.

The sheet answers GDPR art. 15(1): who the controller is, why calls are recorded and on what
legal basis, for how long, who receives them, WHO ACCESSED THESE RECORDINGS AND WHEN (from
the access log: every entry whose target is one of the recordings or the person's
pseudonym), the person's rights and how to complain to the supervisory authority.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from callrec.audit import AuditLog
    from callrec.config import ControllerConfig, RetentionConfig

__all__ = ["access_entries", "information_sheet", "receipt_html", "retention_text"]

MAX_ACCESSES = 5000

_STYLE = """
body{font:11pt/1.45 system-ui,sans-serif;max-width:52em;margin:1.5em auto;padding:0 1em;color:#111}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{border:1px solid #aaa;
padding:.2em .4em;text-align:left;vertical-align:top}dt{font-weight:bold}dd{margin:0 0 .5em 1em}
.lang{page-break-before:always}.lang:first-of-type{page-break-before:auto}
@media print{body{margin:0;max-width:none}}
"""

# The texts of the sheet, per language.
_TEXT: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Vos données : enregistrements d'appels téléphoniques",
        "intro": "Ce document accompagne la copie des enregistrements de vos appels que nous "
                 "détenons (RGPD, article 15). Il a été produit le {at} (UTC).",
        "controller": "Responsable du traitement",
        "name": "Organisme", "address": "Adresse", "contact": "Contact pour vos demandes",
        "dpo": "Délégué à la protection des données",
        "missing": "non renseigné par l'organisme",
        "purposes": "Finalités", "basis": "Base légale", "retention": "Durée de conservation",
        "recipients": "Destinataires",
        "content": "Contenu de l'archive",
        "content_text": "{n} enregistrement(s) : pour chacun, le son (fichier {formats}, "
                        "lisible par les lecteurs courants) et ses données (fichier .json : "
                        "date, durée, sens de l'appel, numéros, nom affiché, preuve de "
                        "l'annonce).",
        "recordings": "Enregistrements", "when": "Date (UTC)", "direction": "Sens",
        "duration": "Durée (s)", "status": "État", "id": "Identifiant",
        "accesses": "Qui a consulté ces enregistrements, et quand",
        "accesses_text": "Extrait du journal des accès de l'appareil (écoutes, "
                         "téléchargements, exports, limitations, rectifications). Les numéros "
                         "y figurent sous forme de pseudonyme.",
        "no_access": "Aucun accès enregistré.",
        "who": "Qui", "action": "Action", "target": "Objet", "why": "Motif",
        "rights": "Vos droits",
        "rights_text": "Vous pouvez obtenir l'accès à vos données et leur copie (art. 15 et "
                       "20), leur rectification (art. 16), leur effacement (art. 17), la "
                       "limitation de leur traitement (art. 18), et vous opposer à "
                       "l'enregistrement de vos appels (art. 21) : votre numéro est alors "
                       "placé sur une liste d'exclusion et vos appels ne sont plus "
                       "enregistrés. Pendant l'annonce, la touche indiquée refuse "
                       "l'enregistrement de l'appel en cours. Adressez vos demandes au "
                       "contact ci-dessus ; nous répondons dans le délai d'un mois.",
        "complain": "Réclamation",
        "complain_text": "Si vous estimez que vos droits ne sont pas respectés, vous pouvez "
                         "adresser une réclamation à l'autorité de contrôle (RGPD, art. 77) :",
        "in": "entrant", "out": "sortant",
        "days": "{d} jours après l'appel, puis effacement automatique",
        "forever": "sans limite de durée (choix explicite de l'organisme)",
        "unverified": "heure non vérifiée : l'horloge de l'appareil n'avait pas encore été "
                      "synchronisée avec un serveur de temps",
    },
    "en": {
        "title": "Your data: recordings of telephone calls",
        "intro": "This document comes with the copy of the recordings of your calls that we "
                 "hold (GDPR, article 15). It was produced on {at} (UTC).",
        "controller": "Controller",
        "name": "Organisation", "address": "Address", "contact": "Contact for your requests",
        "dpo": "Data protection officer",
        "missing": "not filled in by the organisation",
        "purposes": "Purposes", "basis": "Legal basis", "retention": "Retention period",
        "recipients": "Recipients",
        "content": "What the archive holds",
        "content_text": "{n} recording(s): for each, the audio ({formats} file, playable by "
                        "common players) and its data (.json file: date, duration, direction "
                        "of the call, numbers, name shown, proof of the announcement).",
        "recordings": "Recordings", "when": "Date (UTC)", "direction": "Direction",
        "duration": "Duration (s)", "status": "Status", "id": "Identifier",
        "accesses": "Who accessed these recordings, and when",
        "accesses_text": "From the appliance's access log (playbacks, downloads, exports, "
                         "restrictions, rectifications). Numbers appear there as pseudonyms.",
        "no_access": "No access recorded.",
        "who": "Who", "action": "Action", "target": "Object", "why": "Reason",
        "rights": "Your rights",
        "rights_text": "You may obtain access to your data and a copy (art. 15 and 20), its "
                       "rectification (art. 16), its erasure (art. 17), the restriction of its "
                       "processing (art. 18), and you may object to your calls being recorded "
                       "(art. 21): your number is then put on an exclusion list and your calls "
                       "are no longer recorded. During the announcement, the key it names "
                       "refuses the recording of that call. Send your requests to the contact "
                       "above; we answer within one month.",
        "complain": "Complaints",
        "complain_text": "If you consider that your rights are not respected, you may lodge a "
                         "complaint with the supervisory authority (GDPR, art. 77):",
        "in": "incoming", "out": "outgoing",
        "days": "{d} days after the call, then erased automatically",
        "forever": "without a time limit (the organisation's explicit choice)",
        "unverified": "time unverified: the appliance's clock had not yet been synchronised "
                      "with a time server",
    },
}


def style_csp() -> str:
    """The Content-Security-Policy under which the sheets' one inline <style> applies when
    the web UI serves them (by its hash; no other inline style or script is allowed)."""
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode("ascii")
    return ("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
            f"style-src 'sha256-{digest}'")


def retention_text(retention: RetentionConfig, lang: str) -> str:
    t = _TEXT[lang]
    if retention.keep_forever:
        return t["forever"]
    return t["days"].format(d=retention.max_age_days)


def access_entries(journal: AuditLog | None, targets: Iterable[str]) -> list[dict[str, Any]]:
    """The access log's entries about these targets (recording ids, the pseudonym), oldest
    first."""
    wanted = [t for t in targets if t]
    if journal is None or not wanted:
        return []
    items, _ = journal.search(targets=wanted, limit=MAX_ACCESSES)
    return items[::-1]


def _row(cells: Iterable[object]) -> str:
    return "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"


def information_sheet(
    controller: ControllerConfig,
    retention: RetentionConfig,
    docs: list[dict[str, Any]],
    accesses: list[dict[str, Any]],
    generated_at: str,
    languages: tuple[str, ...] = ("fr", "en"),
) -> str:
    """The sheet as one HTML document."""
    formats = sorted({str((d.get("audio") or {}).get("format") or "wav").upper()
                      .replace("OPUS", "Ogg/Opus") for d in docs}) or ["WAV"]
    body = []
    for lang in languages:
        t = _TEXT[lang]

        def value(text: str, t: dict[str, str] = t) -> str:
            return escape(text) if text.strip() else f"<em>{escape(t['missing'])}</em>"

        def when(d: dict[str, Any], t: dict[str, str] = t) -> str:
            started = str(d.get("started_at") or "")
            if d.get("clock_synchronised") is False:  # callrec.clock.recording_fields
                return f"{started} ({t['unverified']})"
            return started

        rows = "".join(_row([when(d), t.get(str(d.get("direction")), ""),
                             d.get("duration_s") or "", d.get("status") or "", d["id"]])
                       for d in sorted(docs, key=lambda d: d["id"]))
        access_rows = "".join(_row([e.get("at", ""), e.get("actor", ""), e.get("action", ""),
                                    e.get("target", ""), e.get("reason", "")])
                              for e in accesses)
        accesses_html = (
            f"<table><thead><tr><th>{t['when']}</th><th>{t['who']}</th><th>{t['action']}</th>"
            f"<th>{t['target']}</th><th>{t['why']}</th></tr></thead><tbody>{access_rows}"
            "</tbody></table>" if accesses else f"<p>{escape(t['no_access'])}</p>")
        dpo = (f"<dt>{t['dpo']}</dt><dd>{escape(controller.dpo_contact)}</dd>"
               if controller.dpo_contact.strip() else "")
        body.append(f"""<section class="lang" lang="{lang}">
<h1>{escape(t['title'])}</h1>
<p>{escape(t['intro'].format(at=generated_at))}</p>
<h2>{t['controller']}</h2>
<dl><dt>{t['name']}</dt><dd>{value(controller.name)}</dd>
<dt>{t['address']}</dt><dd>{value(controller.address)}</dd>
<dt>{t['contact']}</dt><dd>{value(controller.contact)}</dd>{dpo}
<dt>{t['purposes']}</dt><dd>{value(controller.purposes)}</dd>
<dt>{t['basis']}</dt><dd>{value(controller.legal_basis)}</dd>
<dt>{t['retention']}</dt><dd>{escape(retention_text(retention, lang))}</dd>
<dt>{t['recipients']}</dt><dd>{value(controller.recipients)}</dd></dl>
<h2>{t['content']}</h2>
<p>{escape(t['content_text'].format(n=len(docs), formats=', '.join(formats)))}</p>
<table><thead><tr><th>{t['when']}</th><th>{t['direction']}</th><th>{t['duration']}</th>
<th>{t['status']}</th><th>{t['id']}</th></tr></thead><tbody>{rows}</tbody></table>
<h2>{escape(t['accesses'])}</h2>
<p>{escape(t['accesses_text'])}</p>
{accesses_html}
<h2>{t['rights']}</h2>
<p>{escape(t['rights_text'])}</p>
<h2>{t['complain']}</h2>
<p>{escape(t['complain_text'])} {value(controller.supervisory_authority)}</p>
</section>""")
    return ("<!DOCTYPE html>\n<html lang=\"" + languages[0] + "\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(_TEXT[languages[0]]['title'])}</title><style>{_STYLE}</style>"
            "</head><body>" + "\n".join(body) + "</body></html>\n")


def receipt_html(receipt: dict[str, Any], controller_name: str = "") -> str:
    """The erasure receipt (from `Erasure.as_dict()`), printable, French and English. It names
    the person by pseudonym and the recordings by id and time: never by number."""
    rows = "".join(_row([r.get("started_at") or "", r.get("direction") or "",
                         r.get("duration_s") or "", r.get("volume") or "", r["id"]])
                   for r in receipt["erased"])
    kept = "".join(_row([r["id"], r.get("why", "")]) for r in receipt["not_erased"])
    warnings = "".join(f"<li>{escape(w)}</li>" for w in receipt.get("warnings", []))
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Reçu d'effacement / Erasure receipt</title>
<style>{_STYLE}</style></head><body>
<h1>Reçu d'effacement / Erasure receipt</h1>
<dl><dt>Organisme / Organisation</dt><dd>{escape(controller_name) or '—'}</dd>
<dt>Demande / Request</dt><dd>{escape(receipt['request'])}</dd>
<dt>Personne (pseudonyme) / Person (pseudonym)</dt><dd>{escape(receipt['subject'])}</dd>
<dt>Effacé le (UTC) / Erased on (UTC)</dt><dd>{escape(receipt['erased_at'])}</dd>
<dt>Par / By</dt><dd>{escape(receipt['erased_by'])}</dd></dl>
<p>Les enregistrements ci-dessous ont été effacés de l'appareil : leur clé de chiffrement a
été détruite, puis le son, les données et l'entrée d'index supprimés. /
The recordings below were erased from the appliance: their encryption key was destroyed,
then the audio, the data and the index entry were deleted.</p>
<h2>Effacés / Erased ({len(receipt['erased'])})</h2>
<table><thead><tr><th>Date (UTC)</th><th>Sens / Direction</th><th>Durée / Duration (s)</th>
<th>Support / Volume</th><th>Identifiant / Identifier</th></tr></thead><tbody>{rows}</tbody>
</table>
{f'<h2>Non effacés / Not erased</h2><table><tbody>{kept}</tbody></table>' if kept else ''}
{f'<h2>Remarques / Notes</h2><ul>{warnings}</ul>' if warnings else ''}
</body></html>
"""
