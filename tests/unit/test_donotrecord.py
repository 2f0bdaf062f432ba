"""The do-not-record list: the pure matcher (French number forms) and its sealed store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from callrec.privacy.donotrecord import (
    DoNotRecord,
    DoNotRecordError,
    Entry,
    Matcher,
    normalise_number,
    normalise_prefix,
    sealer_for,
)
from callrec.storage.crypto import Sealer


@pytest.mark.parametrize("raw", ["0612345678", "06 12 34 56 78", "06.12.34.56.78",
                                 "+33 6 12 34 56 78", "+33612345678", "0033 6 12 34 56 78",
                                 "33612345678", "+33 (0)6 12 34 56 78"])
def test_french_national_and_international_forms_are_the_same_number(raw: str) -> None:
    assert normalise_number(raw) == "0612345678"


def test_other_numbers_keep_their_digits() -> None:
    assert normalise_number("+44 20 7946 0958") == "442079460958"
    assert normalise_number("3615") == "3615"  # short numbers are not taken for +33
    assert normalise_number(None) == "" and normalise_number("") == ""
    assert normalise_number("P") == ""


def test_prefixes() -> None:
    assert normalise_prefix("+33 1") == "01"
    assert normalise_prefix("0033 1 45") == "0145"
    assert normalise_prefix("01 45") == "0145"
    assert normalise_prefix("+33") == "0"
    assert normalise_prefix("33") == "33"  # without "+": digits as given


def test_matcher_exact_and_prefix() -> None:
    m = Matcher.of([Entry("0612345678", "number"), Entry("0145", "prefix")])
    assert m.matches("+33 6 12 34 56 78")
    assert m.matches("0612345678")
    assert not m.matches("0612345679")
    assert m.matches("+33 1 45 67 89 12") and m.matches("0145678912")
    assert not m.matches("0146678912")
    assert not m.matches(None) and not m.matches("")  # withheld never matches
    assert not Matcher().matches("0612345678")


def test_store_round_trip_sealed(tmp_path: Path) -> None:
    sealer = Sealer(os.urandom(32))
    path = tmp_path / "privacy" / "donotrecord.json"
    dnr = DoNotRecord.load(path, sealer)
    assert dnr.entries() == [] and not dnr.matches("0612345678")
    dnr.add("+33 6 12 34 56 78", "number", "objection")
    dnr.add("06 12 34 56 78", "number", "again")  # same number: kept once
    dnr.add("+33 1 45", "prefix", "objection")
    assert [(e.value, e.kind, e.reason) for e in dnr.entries()] == [
        ("0612345678", "number", "objection"), ("0145", "prefix", "objection")]
    raw = path.read_bytes()
    assert b"0612345678" not in raw and b"612345678" not in raw and b"0145" not in raw
    again = DoNotRecord.load(path, sealer)
    assert again.matches("0612345678") and again.matches("0145000000")
    assert again.remove("0612345678")
    assert not again.remove("0612345678")
    assert not again.matches("0612345678")
    # The first instance sees the other's change with one stat.
    assert dnr.refresh() and not dnr.matches("0612345678") and dnr.matches("0145000000")
    assert not dnr.refresh()
    with pytest.raises(DoNotRecordError):
        DoNotRecord.load(path, Sealer(os.urandom(32)))  # another device's key
    with pytest.raises(DoNotRecordError):
        DoNotRecord.load(path, None)  # sealed, but encryption turned off


def test_store_plain_and_bad_entries(tmp_path: Path) -> None:
    path = tmp_path / "dnr.json"
    dnr = DoNotRecord.load(path, None)
    dnr.add("0612345678")
    assert b"0612345678" in path.read_bytes()  # encryption off: plain JSON, said in the docs
    with pytest.raises(DoNotRecordError):
        dnr.add("call me", "number")
    with pytest.raises(DoNotRecordError):
        dnr.add("+", "number")
    with pytest.raises(DoNotRecordError):
        dnr.add("0612", "range")
    path.write_bytes(b"{not json")
    with pytest.raises(DoNotRecordError):
        dnr.refresh()
    assert dnr.matches("0612345678")  # an unreadable file never empties the list in memory


def test_sealer_for_without_keys() -> None:
    assert sealer_for(None) is None
