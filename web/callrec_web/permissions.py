"""Who may do what: the one table from roles to permissions, checked on every route."""

from __future__ import annotations

from collections.abc import Iterable

RECORDINGS_LIST = "recordings.list"
RECORDINGS_LISTEN = "recordings.listen"  # play, download, read metadata
RECORDINGS_ERASE = "recordings.erase"
STATUS_VIEW = "status.view"
USERS_MANAGE = "users.manage"
TOKENS_OWN = "tokens.own"
AUDIT_VIEW = "audit.view"  # read the access log and its verification
# The record of processing (GDPR art. 30): for the controller and the supervisory authority,
# not the public, as it details the security measures (and their gaps) and who holds access.
PROCESSING_RECORD = "processing.record"
# Requests about a person (access, erasure, restriction, rectification, objection), and
# playing or exporting a restricted recording (with a stated reason).
SUBJECTS_MANAGE = "subjects.manage"
# Run the self-test: it closes the announcement relay and plays a tone on an idle line.
SELFTEST_RUN = "selftest.run"
# Change the configuration (line, country, announcements, retention, language), back it up and
# restore it, and download the diagnostics bundle: none of these reveals a recording.
SETTINGS_MANAGE = "settings.manage"

PERMISSIONS = frozenset(
    {RECORDINGS_LIST, RECORDINGS_LISTEN, RECORDINGS_ERASE, STATUS_VIEW, USERS_MANAGE, TOKENS_OWN,
     AUDIT_VIEW, PROCESSING_RECORD, SUBJECTS_MANAGE, SELFTEST_RUN, SETTINGS_MANAGE}
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": PERMISSIONS,
    "supervisor": frozenset({RECORDINGS_LIST, RECORDINGS_LISTEN, STATUS_VIEW}),
    "privacy_officer": frozenset(
        {RECORDINGS_LIST, RECORDINGS_LISTEN, RECORDINGS_ERASE, STATUS_VIEW, AUDIT_VIEW,
         PROCESSING_RECORD, SUBJECTS_MANAGE}
    ),
    # The technician keeps the appliance running but never hears a call.
    "technician": frozenset({STATUS_VIEW, USERS_MANAGE, SELFTEST_RUN, SETTINGS_MANAGE}),
}


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    """The union of the permissions of `roles`; unknown roles grant nothing."""
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)


def allowed(roles: Iterable[str], perm: str) -> bool:
    """True if any of `roles` grants `perm`."""
    if perm not in PERMISSIONS:
        raise ValueError(f"unknown permission {perm!r}")
    return perm in permissions_of(roles)


def may_grant(granter_roles: Iterable[str], roles: Iterable[str]) -> bool:
    """True if someone with `granter_roles` may create or delete an account with `roles`.

    Only permissions one holds can be handed out, so users.manage never escalates: a
    technician can manage technicians but cannot make an account that hears recordings.
    """
    return permissions_of(roles) <= permissions_of(granter_roles)
