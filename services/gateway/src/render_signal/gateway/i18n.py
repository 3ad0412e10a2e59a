"""Dashboard strings in French (default, like the original) and English.

The language comes from ``?lang=`` (remembered in a cookie), then the cookie,
then ``Accept-Language``, then French. Templates read the dict directly; the
page hands the same dict to the JS through a ``data-i18n`` attribute (the CSP
forbids inline scripts), and ``GET /api/i18n`` serves it as JSON.

Over 300 lines: two string tables, kept side by side so a key missing in one
language shows (``test_gateway_i18n`` compares their keys).
"""

from __future__ import annotations

from typing import Final

from render_signal.gateway.consolestrings import CONSOLE_EN, CONSOLE_FR
from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANG_COOKIE",
    "chosen_language",
    "parse_accept_language",
    "remember_language",
    "resolve_language",
    "strings",
]

DEFAULT_LANGUAGE: Final = "fr"
LANGUAGES: Final = ("fr", "en")
LANG_COOKIE: Final = "rs_lang"
LANG_COOKIE_MAX_AGE_S: Final = 365 * 24 * 3600

_FR: Final[dict[str, str]] = {
    "title": "Tableau de bord render-signal",
    "skip_to_content": "Aller au contenu",
    "logged_in_as": "Connecté en tant que",
    "session_password": "session mot de passe",
    "session_magic": "session lien magique",
    "magic_readonly_note": "Session opérateur (lien magique) : consulter, rejouer les lettres "
    "mortes, régler la fenêtre horaire, l'Absence Globale et l'envoi. Les cibles, règles, "
    "liens magiques, import/export et le déploiement demandent une connexion par mot de passe.",
    "role_admin": "admin",
    "role_operator": "opérateur (lien magique)",
    "logout": "Déconnexion",
    "language": "Langue",
    "tab_overview": "Vue d'ensemble",
    "tab_webhooks": "Webhooks",
    "tab_routing": "Routage",
    "tab_schedule": "Planification",
    "tab_operations": "Opérations",
    "tab_tools": "Outils",
    "status_title": "État du système",
    "status_ok": "Tout fonctionne",
    "status_warning": "Incidents dans les dernières 24 h",
    "status_critical": "Erreurs dans la dernière heure",
    "status_unknown": "État inconnu",
    "refresh": "Actualiser",
    "services": "Services",
    "streams": "Flux",
    "stream_length": "longueur",
    "stream_pending": "en attente",
    "stream_lag": "retard",
    "dlq": "Lettres mortes",
    "disabled_targets": "Cibles désactivées",
    "last_email": "Dernier email",
    "last_webhook": "Dernier webhook",
    "errors_1h": "Erreurs (1 h)",
    "errors_24h": "Erreurs (24 h)",
    "no_service": "Aucun service actif",
    "age": "il y a",
    "just_now": "À l'instant",
    "minutes_ago": "Il y a {n} min",
    "hours_ago": "Il y a {n} h",
    "never": "Jamais",
    "none": "Aucun",
    "logs_title": "Historique des webhooks",
    "logs_days": "Période",
    "days_n": "{n} jours",
    "logs_empty": "Aucun webhook sur la période.",
    "loading": "Chargement…",
    "col_time": "Date",
    "col_email": "Email",
    "col_target": "Cible",
    "col_status": "Statut",
    "col_attempt": "Tentative",
    "col_mode": "Mode",
    "col_duration": "Durée",
    "col_reason": "Raison",
    "col_subject": "Sujet",
    "status_success": "succès",
    "status_error": "erreur",
    "status_skipped": "ignoré",
    "status_deferred": "différé",
    "status_dead_letter": "lettre morte",
    "status_rate_limited": "limité",
    "next_attempt": "prochain essai",
    "targets_title": "URLs & SSL",
    "webhook_url": "URL du webhook",
    "webhook_url_help": "Affichée masquée ; n'est envoyée que si vous la modifiez.",
    "ssl_verify": "Vérifier le certificat SSL",
    "sending_enabled": "Envoi des webhooks activé",
    "delivery_mode": "Mode HTTP",
    "fallback_415": "Repli en mode formulaire sur HTTP 415",
    "accept_any_2xx": "Accepter toute réponse 2xx (même un JSON « success: false »)",
    "accept_any_2xx_help": "Sinon, une réponse 2xx dont le JSON dit « success: false » est un"
    " échec, réessayé puis mis en lettres mortes (« le destinataire a répondu sans succès »),"
    " comme le faisait"
    " l'original. Une réponse non JSON (« Accepted » de Make) reste un succès.",
    "save": "Enregistrer",
    "saved": "Enregistré.",
    "save_required": "Sauvegarde requise",
    "last_saved": "Dernière sauvegarde",
    "window_title": "Fenêtre Horaire Webhooks",
    "window_help": "Envois autorisés entre le début et la fin (fuseau Europe/Paris). "
    "Laisser les deux vides pour désactiver.",
    "window_start": "Début",
    "window_end": "Fin",
    "window_none": "— aucune —",
    "absence_title": "Absence Globale",
    "absence_enabled": "Activer l'absence (aucun email envoyé les jours cochés)",
    "absence_days": "Jours d'absence",
    "routing_title": "Routage Dynamique",
    "routing_locked": "Verrouillé",
    "routing_unlocked": "Déverrouillé",
    "routing_unlock": "Déverrouiller",
    "routing_lock": "Verrouiller",
    "routing_add": "Ajouter une règle",
    "routing_reload": "Recharger",
    "routing_empty": "Aucune règle : toutes les notifications vont à la cible par défaut.",
    "rule_name": "Nom",
    "rule_conditions": "Conditions (toutes doivent correspondre)",
    "rule_add_condition": "Ajouter une condition",
    "rule_remove": "Supprimer la règle",
    "cond_field": "Champ",
    "cond_operator": "Opérateur",
    "cond_value": "Valeur",
    "cond_case": "Sensible à la casse",
    "cond_remove": "Retirer",
    "rule_webhook": "URL du webhook",
    "rule_priority": "Priorité",
    "rule_stop": "Arrêter le traitement (ne pas envoyer à la cible par défaut)",
    "rule_accept_any_2xx": "Accepter toute réponse 2xx",
    "rule_require_success_true": "Exiger 200 + JSON « success: true »",
    "polling_title": "Planification de la relève",
    "polling_enabled": "Relève IMAP activée",
    "active_days": "Jours actifs",
    "active_start_hour": "Heure de début",
    "active_end_hour": "Heure de fin",
    "vacation_start": "Début des vacances",
    "vacation_end": "Fin des vacances",
    "senders": "Expéditeurs surveillés (un par ligne)",
    "flags_title": "Options d'exécution",
    "flag_disable_email_id_dedup": "Contourner la déduplication par identifiant d'email",
    "flag_allow_custom_webhook_without_links": "Envoyer le webhook même sans lien",
    "flag_gmail_ingress_enabled": "Activer l'ingestion Gmail",
    "links_title": "Journal des liens",
    "links_empty": "Aucun lien enregistré.",
    "col_provider": "Fournisseur",
    "col_source": "Lien source",
    "col_r2": "Lien R2",
    "dead_title": "Lettres mortes",
    "dead_empty": "Aucune lettre morte.",
    "replay": "Rejouer",
    "replay_all": "Tout rejouer",
    "replayed": "Entrée rejouée.",
    "replayed_all": "{n} entrée(s) rejouée(s).",
    "col_kind": "Type",
    "col_error": "Erreur",
    "col_failed_at": "Échec le",
    "col_actions": "Actions",
    "magic_title": "Liens magiques",
    "magic_unlimited": "Lien permanent (réutilisable jusqu'à révocation)",
    "magic_create": "Générer un lien",
    "magic_created": "Lien généré.",
    "magic_expires": "Expire le",
    "magic_no_expiry": "Sans expiration",
    "copy_link": "Copier",
    "copied": "Lien copié dans le presse-papiers.",
    "copy_failed": "Copie impossible : sélectionnez le lien manuellement.",
    "magic_permanent": "Liens permanents",
    "magic_none": "Aucun lien permanent.",
    "revoke": "Révoquer",
    "revoke_all": "Tout révoquer",
    "revoked": "Lien révoqué.",
    "revoked_all": "Tous les liens permanents sont révoqués.",
    "col_created": "Créé le",
    "col_last_used": "Dernière utilisation",
    "col_id": "Identifiant",
    "deploy_title": "Déploiement",
    "deploy_button": "Déployer l'application",
    "deploy_confirm": "Redéployer l'application maintenant ? "
    "Le service sera brièvement indisponible.",
    "confirm": "Confirmer",
    "cancel": "Annuler",
    "deploy_started": "Déploiement déclenché ; vérification de l'état…",
    "deploy_healthy": "Service de nouveau opérationnel.",
    "deploy_timeout": "Le service ne répond pas encore ; vérifiez plus tard.",
    "config_title": "Export / import de configuration",
    "export": "Exporter la configuration",
    "import": "Importer un fichier JSON",
    "import_legacy": "Importer une configuration de l'ancien système",
    "imported": "Configuration importée.",
    "choose_file": "Fichier",
    "error_generic": "Erreur",
    "error_network": "Erreur réseau : le serveur ne répond pas.",
    "error_session": "Session expirée : redirection vers la connexion…",
    "error_invalid_json": "Fichier JSON invalide.",
    "confirm_replay_all": "Rejouer toutes les lettres mortes ?",
    "confirm_revoke_all": "Révoquer tous les liens permanents ?",
    "weekday_0": "Lundi",
    "weekday_1": "Mardi",
    "weekday_2": "Mercredi",
    "weekday_3": "Jeudi",
    "weekday_4": "Vendredi",
    "weekday_5": "Samedi",
    "weekday_6": "Dimanche",
    "close": "Fermer",
}

_EN: Final[dict[str, str]] = {
    "title": "render-signal dashboard",
    "skip_to_content": "Skip to content",
    "logged_in_as": "Signed in as",
    "session_password": "password session",
    "session_magic": "magic-link session",
    "magic_readonly_note": "Operator session (magic link): view, replay dead letters, set the "
    "time window, Absence Globale and sending. Targets, rules, magic links, import/export and "
    "deploying need a password login.",
    "role_admin": "admin",
    "role_operator": "operator (magic link)",
    "logout": "Sign out",
    "language": "Language",
    "tab_overview": "Overview",
    "tab_webhooks": "Webhooks",
    "tab_routing": "Routing",
    "tab_schedule": "Schedule",
    "tab_operations": "Operations",
    "tab_tools": "Tools",
    "status_title": "System status",
    "status_ok": "All systems working",
    "status_warning": "Incidents in the last 24 h",
    "status_critical": "Errors in the last hour",
    "status_unknown": "Status unknown",
    "refresh": "Refresh",
    "services": "Services",
    "streams": "Streams",
    "stream_length": "length",
    "stream_pending": "pending",
    "stream_lag": "lag",
    "dlq": "Dead letters",
    "disabled_targets": "Disabled targets",
    "last_email": "Last email",
    "last_webhook": "Last webhook",
    "errors_1h": "Errors (1 h)",
    "errors_24h": "Errors (24 h)",
    "no_service": "No live service",
    "age": "age",
    "just_now": "Just now",
    "minutes_ago": "{n} min ago",
    "hours_ago": "{n} h ago",
    "never": "Never",
    "none": "None",
    "logs_title": "Webhook history",
    "logs_days": "Period",
    "days_n": "{n} days",
    "logs_empty": "No webhook in this period.",
    "loading": "Loading…",
    "col_time": "Time",
    "col_email": "Email",
    "col_target": "Target",
    "col_status": "Status",
    "col_attempt": "Attempt",
    "col_mode": "Mode",
    "col_duration": "Duration",
    "col_reason": "Reason",
    "col_subject": "Subject",
    "status_success": "success",
    "status_error": "error",
    "status_skipped": "skipped",
    "status_deferred": "deferred",
    "status_dead_letter": "dead letter",
    "status_rate_limited": "rate limited",
    "next_attempt": "next attempt",
    "targets_title": "URLs & SSL",
    "webhook_url": "Webhook URL",
    "webhook_url_help": "Shown masked; only sent when you change it.",
    "ssl_verify": "Verify the SSL certificate",
    "sending_enabled": "Webhook sending enabled",
    "delivery_mode": "HTTP mode",
    "fallback_415": "Fall back to form mode on HTTP 415",
    "accept_any_2xx": "Accept any 2xx reply (even a JSON “success: false”)",
    "accept_any_2xx_help": "Otherwise a 2xx whose JSON says “success: false” is a failure,"
    " retried then dead-lettered (“the receiver answered without success”), as the original"
    " did. A reply"
    " that is not JSON (Make's “Accepted”) stays a success.",
    "save": "Save",
    "saved": "Saved.",
    "save_required": "Save required",
    "last_saved": "Last saved",
    "window_title": "Webhook time window",
    "window_help": "Sends allowed between start and end (Europe/Paris time). "
    "Leave both empty to disable.",
    "window_start": "Start",
    "window_end": "End",
    "window_none": "— none —",
    "absence_title": "Global absence",
    "absence_enabled": "Enable absence (no email sent on the checked days)",
    "absence_days": "Absence days",
    "routing_title": "Dynamic routing",
    "routing_locked": "Locked",
    "routing_unlocked": "Unlocked",
    "routing_unlock": "Unlock",
    "routing_lock": "Lock",
    "routing_add": "Add a rule",
    "routing_reload": "Reload",
    "routing_empty": "No rule: every notification goes to the default target.",
    "rule_name": "Name",
    "rule_conditions": "Conditions (all must match)",
    "rule_add_condition": "Add a condition",
    "rule_remove": "Remove the rule",
    "cond_field": "Field",
    "cond_operator": "Operator",
    "cond_value": "Value",
    "cond_case": "Case sensitive",
    "cond_remove": "Remove",
    "rule_webhook": "Webhook URL",
    "rule_priority": "Priority",
    "rule_stop": "Stop processing (skip the default target)",
    "rule_accept_any_2xx": "Accept any 2xx reply",
    "rule_require_success_true": "Require 200 + JSON “success: true”",
    "polling_title": "Polling schedule",
    "polling_enabled": "IMAP polling enabled",
    "active_days": "Active days",
    "active_start_hour": "Start hour",
    "active_end_hour": "End hour",
    "vacation_start": "Vacation start",
    "vacation_end": "Vacation end",
    "senders": "Senders of interest (one per line)",
    "flags_title": "Runtime flags",
    "flag_disable_email_id_dedup": "Bypass email-id deduplication",
    "flag_allow_custom_webhook_without_links": "Send the webhook even without links",
    "flag_gmail_ingress_enabled": "Enable Gmail ingress",
    "links_title": "Link journal",
    "links_empty": "No link recorded.",
    "col_provider": "Provider",
    "col_source": "Source link",
    "col_r2": "R2 link",
    "dead_title": "Dead letters",
    "dead_empty": "No dead letter.",
    "replay": "Replay",
    "replay_all": "Replay all",
    "replayed": "Entry replayed.",
    "replayed_all": "{n} entr(y/ies) replayed.",
    "col_kind": "Kind",
    "col_error": "Error",
    "col_failed_at": "Failed at",
    "col_actions": "Actions",
    "magic_title": "Magic links",
    "magic_unlimited": "Permanent link (reusable until revoked)",
    "magic_create": "Generate a link",
    "magic_created": "Link generated.",
    "magic_expires": "Expires at",
    "magic_no_expiry": "No expiry",
    "copy_link": "Copy",
    "copied": "Link copied to the clipboard.",
    "copy_failed": "Copy failed: select the link by hand.",
    "magic_permanent": "Permanent links",
    "magic_none": "No permanent link.",
    "revoke": "Revoke",
    "revoke_all": "Revoke all",
    "revoked": "Link revoked.",
    "revoked_all": "All permanent links revoked.",
    "col_created": "Created",
    "col_last_used": "Last used",
    "col_id": "Id",
    "deploy_title": "Deployment",
    "deploy_button": "Deploy the application",
    "deploy_confirm": "Redeploy the application now? The service will be briefly unavailable.",
    "confirm": "Confirm",
    "cancel": "Cancel",
    "deploy_started": "Deploy triggered; checking health…",
    "deploy_healthy": "Service is healthy again.",
    "deploy_timeout": "The service is not answering yet; check again later.",
    "config_title": "Configuration export / import",
    "export": "Export the configuration",
    "import": "Import a JSON file",
    "import_legacy": "Import a configuration from the old system",
    "imported": "Configuration imported.",
    "choose_file": "File",
    "error_generic": "Error",
    "error_network": "Network error: the server is not answering.",
    "error_session": "Session expired: redirecting to sign-in…",
    "error_invalid_json": "Invalid JSON file.",
    "confirm_replay_all": "Replay every dead letter?",
    "confirm_revoke_all": "Revoke every permanent link?",
    "weekday_0": "Monday",
    "weekday_1": "Tuesday",
    "weekday_2": "Wednesday",
    "weekday_3": "Thursday",
    "weekday_4": "Friday",
    "weekday_5": "Saturday",
    "weekday_6": "Sunday",
    "close": "Close",
}

_STRINGS: Final[dict[str, dict[str, str]]] = {
    "fr": {**_FR, **CONSOLE_FR},
    "en": {**_EN, **CONSOLE_EN},
}


def strings(lang: str) -> dict[str, str]:
    """The string table for ``lang`` (French for anything unknown)."""
    return _STRINGS.get(lang, _FR)


def _supported(value: str | None) -> str | None:
    if not value:
        return None
    base = value.strip().lower().split("-", 1)[0].split("_", 1)[0]
    return base if base in LANGUAGES else None


def parse_accept_language(header: str | None) -> str | None:
    """The supported language with the highest q-value in an Accept-Language header."""
    if not header:
        return None
    best: tuple[float, int, str] | None = None
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        lang = _supported(tag)
        # Ties keep the header's order, hence -index.
        if lang and quality > 0 and (best is None or (quality, -index) > best[:2]):
            best = (quality, -index, lang)
    return best[2] if best else None


def resolve_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """``?lang=`` first, then the cookie, then Accept-Language, then French."""
    return (
        _supported(query)
        or _supported(cookie)
        or parse_accept_language(accept_language)
        or DEFAULT_LANGUAGE
    )


def chosen_language(request: Request) -> str | None:
    """The language the visitor chose: ``?lang=``, else the remembered cookie; or None."""
    return _supported(request.query_params.get("lang")) or _supported(
        request.cookies.get(LANG_COOKIE)
    )


def remember_language(request: Request, response: Response) -> None:
    """An explicit ``?lang=`` choice sticks for later visits (login page and dashboard)."""
    chosen = _supported(request.query_params.get("lang"))
    if chosen:
        response.set_cookie(
            LANG_COOKIE,
            chosen,
            max_age=LANG_COOKIE_MAX_AGE_S,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
