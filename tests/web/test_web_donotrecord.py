"""The do-not-record list page: the privacy officer adds a number and a prefix and removes
an entry; the sealed file and the daemon's matcher follow, the access log names pseudonyms
only, and no other role gets in."""

from __future__ import annotations

from webtest_support import Appliance

from callrec.audit import open_audit
from callrec.privacy.donotrecord import DoNotRecord, sealer_for
from callrec.privacy.pseudonym import Pseudonymizer, pseudonym_key

PAGE = "/subjects/donotrecord"


def the_list(app: Appliance) -> DoNotRecord:
    config = app.ctx.config
    return DoNotRecord.load(config.privacy.do_not_record_path(config.data_dir),
                            sealer_for(app.store.keys))


def test_the_officer_manages_numbers_and_prefixes(appliance: Appliance) -> None:
    config = appliance.ctx.config
    appliance.ctx.audit = open_audit(config, appliance.store.keys)  # as the daemon does
    c = appliance.client()
    c.login("privacy")
    page = c.get(PAGE)
    assert page.status == 200 and "The list is empty" in page.text
    resp = c.post(PAGE, {"kind": "number", "value": "+33 6 98 76 54 32",
                         "reason": "objection by letter"})
    assert resp.status == 303
    assert c.post(PAGE, {"kind": "prefix", "value": "0899", "reason": "premium numbers"}
                  ).status == 303
    lst = the_list(appliance)
    assert lst.matches("06 98 76 54 32") and lst.matches("0899123456")
    assert not lst.matches("0612345678")
    page = c.get(PAGE).text
    assert "0698765432" in page and "0899" in page and "On the list (2)" in page
    path = lst.path
    assert b"98765432" not in path.read_bytes() and b"0899" not in path.read_bytes()

    # Withdrawn: off the list, with a reason.
    assert c.post(f"{PAGE}/remove", {"kind": "number", "value": "0698765432",
                                     "reason": "objection withdrawn"}).status == 303
    lst = the_list(appliance)
    assert not lst.matches("0698765432") and lst.matches("0899000000")
    assert c.post(f"{PAGE}/remove", {"kind": "number", "value": "0698765432",
                                     "reason": "again"}).status == 404
    assert c.post(PAGE, {"kind": "word", "value": "06", "reason": ""}).status == 400

    # The access log: pseudonyms and prefix lengths, never the digits.
    entries = [e for e in appliance.ctx.audit.entries()
               if e["action"].startswith("subject.object")]
    assert [e["action"] for e in entries] == ["subject.object", "subject.object",
                                             "subject.object_withdrawn"]
    pseudonym = Pseudonymizer(pseudonym_key(appliance.store.keys, config.data_dir))
    assert entries[0]["target"] == pseudonym("0698765432")
    assert entries[1]["target"] == "prefix of 4 digits"
    assert all("98765432" not in str(e) and "0899" not in str(e) for e in entries)


def test_only_the_privacy_officer_and_admin_get_in(appliance: Appliance) -> None:
    for role, allowed in (("admin", True), ("privacy", True), ("supervisor", False),
                          ("tech", False)):
        c = appliance.client()
        c.login(role)
        assert c.get(PAGE).status == (200 if allowed else 403), role
