"""Requests about a person: the pure parts (numbers, due dates, the ZIP's length, rectification,
the sheet) and the request register on disk."""

from __future__ import annotations

import io
import multiprocessing
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from test_storage_two_roots import PCM_A, PCM_B, Stick, open_two, record

from callrec.config import ControllerConfig, RetentionConfig
from callrec.privacy.donotrecord import DoNotRecord
from callrec.privacy.requests import Request, RequestBook, RequestError, due_date, overdue
from callrec.privacy.sheet import information_sheet, receipt_html
from callrec.privacy.subjects import (
    Subjects,
    ZipEntry,
    ZipPlan,
    find_recordings,
    number_variants,
    rectification,
    same_number,
    zip_length,
)
from callrec.storage.crypto import Sealer
from callrec.storage.retention import RecordingFacts

KEY = b"k" * 32


def fake_pseudonym(number: str) -> str:
    from callrec.privacy.pseudonym import pseudonym

    return pseudonym(number, KEY)


# -- numbers ------------------------------------------------------------------------------------
def test_every_common_form_of_a_french_number_is_the_same_number() -> None:
    for form in ("+33 6 12 34 56 78", "0033612345678", "33612345678", "+33 (0)6 12 34 56 78",
                 "06.12.34.56.78"):
        assert same_number(form, "0612345678"), form
    assert not same_number("0612345679", "0612345678")
    assert not same_number("", "")
    variants = number_variants("06 12 34 56 78")
    assert variants[0] == "0612345678"
    assert {"33612345678", "0033612345678", "3306123456 78".replace(" ", "")} <= set(variants)
    assert number_variants("abc") == []
    assert number_variants("+44 20 7946 0000") == ["442079460000"]


def test_find_recordings_on_both_volumes_in_every_stored_form(tmp_path: Path) -> None:
    store = open_two(tmp_path, Stick())
    a = record(store, "sd", PCM_A)  # caller_number "0612345678"
    b = record(store, "usb", PCM_B)
    meta = {**(store.get(b) or {}), "caller_number": "+33612345678"}
    store.add(meta)
    found = {d["id"] for d in find_recordings(store, "0033 6 12 34 56 78")}
    assert found == {a, b}
    assert find_recordings(store, "0612345679") == []
    store.close()


# -- due dates and the register -----------------------------------------------------------------
@pytest.mark.parametrize(("received", "due"), [
    (date(2024, 1, 15), date(2024, 2, 15)),
    (date(2024, 1, 31), date(2024, 2, 29)),
    (date(2023, 1, 31), date(2023, 2, 28)),
    (date(2024, 3, 31), date(2024, 4, 30)),
    (date(2024, 12, 20), date(2025, 1, 20)),
])
def test_the_due_date_is_one_calendar_month_later(received: date, due: date) -> None:
    assert due_date(received) == due


def test_overdue_only_when_open_and_past_the_due_day() -> None:
    req = Request("R1", "access", "p-1", "2024-01-31", "2024-02-29", number="0612345678")
    assert not overdue(req, date(2024, 2, 29))
    assert overdue(req, date(2024, 3, 1))
    closed = req.closed("done", "sent", "officer", datetime(2024, 3, 2, tzinfo=UTC))
    assert not overdue(closed, date(2024, 4, 1))


def test_a_closed_request_keeps_the_pseudonym_only() -> None:
    req = Request("R1", "erasure", "p-abc", "2024-01-01", "2024-02-01", number="0612345678")
    closed = req.closed("refused", "manifestly unfounded", "officer",
                        datetime(2024, 1, 5, tzinfo=UTC))
    assert closed.number is None and closed.subject == "p-abc"
    assert (closed.status, closed.handled_by, closed.closed_at) == (
        "refused", "officer", "2024-01-05T00:00:00+00:00")
    assert "number" not in closed.as_dict()
    with pytest.raises(RequestError):
        closed.closed("done", "", "x", datetime.now(UTC))
    with pytest.raises(RequestError):
        req.closed("open", "", "x", datetime.now(UTC))


def test_the_register_is_sealed_and_answers_open_requests(tmp_path: Path) -> None:
    book = RequestBook(tmp_path / "requests.json", Sealer(KEY))
    opened = book.open("access", "p-1", "0612345678", "officer", date(2024, 5, 2))
    assert opened.due == "2024-06-02" and book.number_of("p-1") == "0612345678"
    assert b"0612345678" not in (tmp_path / "requests.json").read_bytes()
    answered = book.answer("access", "p-1", "archive given", "officer")
    assert answered.id == opened.id and answered.status == "done" and answered.number is None
    # No open request of that type: one is recorded, received today and closed.
    fresh = book.answer("objection", "p-1", "listed", "officer")
    assert fresh.id != opened.id and fresh.received == datetime.now(UTC).date().isoformat()
    assert book.number_of("p-1") is None
    with pytest.raises(RequestError):
        RequestBook(tmp_path / "requests.json", Sealer(b"x" * 32)).all()
    with pytest.raises(RequestError):
        book.open("complaint", "p-1", None, "officer")


def _open_many(path: str, n: int) -> None:
    book = RequestBook(Path(path), Sealer(KEY))
    for _ in range(n):
        book.open("access", "p-2", None, "cli:x")


def test_two_processes_writing_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "requests.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_open_many, args=(path, 15)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    assert len(RequestBook(Path(path), Sealer(KEY)).all()) == 45


# -- rectification --------------------------------------------------------------------------
def test_rectification_logs_fields_and_pseudonyms_never_values() -> None:
    doc = {"id": "x", "caller_number": "0612345678", "caller_name": "DUPONT"}
    fields, details = rectification(doc, {"caller_number": "+33 6 12 34 56 79",
                                           "caller_name": "DUPOND", "notes": ""},
                                    fake_pseudonym)
    assert fields == {"caller_number": "+33 6 12 34 56 79", "caller_name": "DUPOND"}
    assert details["fields"] == ["caller_number", "caller_name"]
    assert details["caller_number"] == {"from": fake_pseudonym("0612345678"),
                                        "to": fake_pseudonym("0612345679")}
    assert "DUPOND" not in str(details) and "56 79" not in str(details)
    cleared, _ = rectification(doc, {"caller_name": ""}, fake_pseudonym)
    assert cleared == {"caller_name": None}
    for bad in ({"caller_number": "call me"}, {"called_number": "abc123"},
                {"caller_name": "x" * 65}, {"audio": "x"}):
        with pytest.raises(ValueError):
            rectification(doc, bad, fake_pseudonym)


# -- the ZIP ------------------------------------------------------------------------------------
class _Bytes:
    content_type = "audio/wav"

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    def size(self) -> int:
        return len(self.data)

    def read_range(self, start: int, end: int) -> bytes:
        return self.data[start:end]

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("sizes", [[0], [1, 70_000, 3], [200_000, 5, 131_072]])
def test_the_zip_length_is_known_before_the_first_byte(sizes: list[int]) -> None:
    sources = [_Bytes(bytes([i % 256]) * n) for i, n in enumerate(sizes)]
    entries = [ZipEntry("information.html", 4, data=b"<p>")]
    entries[0].size = 3
    entries += [ZipEntry(f"recordings/r{i}.wav", s.size(), opener=lambda s=s: s)
                for i, s in enumerate(sources)]
    plan = ZipPlan(entries)
    blocks = list(plan.iter_bytes())
    data = b"".join(blocks)
    assert plan.length == len(data)
    assert max(len(b) for b in blocks) <= 64 * 1024 + 200  # streamed, never whole
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    for i, source in enumerate(sources):
        assert archive.read(f"recordings/r{i}.wav") == source.data and source.closed


def test_zip_length_gives_up_past_zip64_and_non_ascii_names() -> None:
    assert zip_length([("a", 3_000_000_000)]) is None
    assert zip_length([("é", 1)]) is None
    assert zip_length([("a", 10)]) == 30 + 46 + 2 + 10 + 16 + 22


# -- the sheet and the receipt ---------------------------------------------------------------
def test_the_sheet_names_the_controller_the_accesses_and_the_rights() -> None:
    docs = [{"id": "20240501T090000Z-0123abcd", "started_at": "2024-05-01T09:00:00Z",
             "direction": "in", "duration_s": 42, "status": "complete",
             "audio": {"format": "opus"}}]
    accesses = [{"at": "2024-05-02T10:00:00.000+00:00", "actor": "marie",
                 "action": "recording.play", "target": docs[0]["id"], "reason": "<b>"}]
    html = information_sheet(ControllerConfig(name="Cabinet & Co"), RetentionConfig(),
                             docs, accesses, "2024-06-01T00:00:00+00:00")
    assert "Cabinet &amp; Co" in html and "&lt;b&gt;" in html and "<b>" not in html
    assert "marie" in html and "recording.play" in html and "Ogg/Opus" in html
    assert "180 jours" in html and "180 days" in html
    assert "art. 77" in html and "CNIL" in html
    assert "non renseigné" in html  # the empty address says so
    assert "Aucun accès" in information_sheet(ControllerConfig(), RetentionConfig(
        keep_forever=True, max_age_days=0), [], [], "t")
    receipt = receipt_html({"subject": "p-1", "request": "R1", "erased_at": "t",
                            "erased_by": "o", "erased": [{"id": docs[0]["id"]}],
                            "not_erased": [], "warnings": ["w"]})
    assert docs[0]["id"] in receipt and "p-1" in receipt


# -- the service on a store ------------------------------------------------------------------
def _service(tmp_path: Path, store: Any, log: list[tuple[Any, ...]]) -> Subjects:
    return Subjects(store, RequestBook(tmp_path / "req.json", None), fake_pseudonym,
                    lambda: DoNotRecord.load(tmp_path / "dnr.json", None),
                    lambda *entry: log.append(entry))


def test_restriction_is_a_flag_retention_honours_and_lifting_clears_it(tmp_path: Path) -> None:
    store = open_two(tmp_path, Stick())
    a, b = record(store, "sd", PCM_A), record(store, "usb", PCM_B)
    log: list[tuple[Any, ...]] = []
    svc = _service(tmp_path, store, log)
    with pytest.raises(ValueError):
        svc.restrict("0612345678", " ", "officer")
    assert set(svc.restrict("0612345678", "contested", "officer")) == {a, b}
    for rec_id in (a, b):
        doc = store.get(rec_id) or {}
        assert RecordingFacts.from_index_doc(doc).exempt
        assert (store.load_sidecar(rec_id) or {})["restriction"]["reason"] == "contested"
    svc.lift(a, "settled", "officer")
    doc = store.get(a) or {}
    assert not doc.get("restricted") and not doc.get("restriction")
    assert not RecordingFacts.from_index_doc(doc).exempt
    assert ("recording.unrestrict", a, "settled") == log[-1][:3]
    store.close()


def test_erasure_covers_both_volumes_and_leaves_a_receipt_without_the_number(
        tmp_path: Path) -> None:
    store = open_two(tmp_path, Stick())
    a, b = record(store, "sd", PCM_A), record(store, "usb", PCM_B)
    log: list[tuple[Any, ...]] = []
    svc = _service(tmp_path, store, log)
    svc.requests.open("erasure", fake_pseudonym("0612345678"), "0612345678", "officer")
    result = svc.erase("+33 6 12 34 56 78", "officer")
    assert {r["id"] for r in result.erased} == {a, b} and not result.not_erased
    assert store.count() == 0 and not store.has_files(a) and not store.has_files(b)
    assert "0612345678" not in str(result.as_dict())
    assert all(r.number is None for r in svc.requests.all())
    (req,) = svc.requests.all()
    assert req.receipt is not None and req.status == "done"
    assert log[-1][0] == "subject.erase" and log[-1][3]["count"] == 2
    store.close()


def test_objection_puts_the_number_on_the_list_once(tmp_path: Path) -> None:
    store = open_two(tmp_path, Stick())
    svc = _service(tmp_path, store, [])
    assert svc.object("+33 6 12 34 56 78", "officer") is True
    assert svc.object("0612345678", "officer") is False
    assert DoNotRecord.load(tmp_path / "dnr.json", None).matches("0033612345678")
    assert [r.type for r in svc.requests.all()] == ["objection", "objection"]
    store.close()
