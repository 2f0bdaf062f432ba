"""Recordings list, detail, audio with Range, download, erase; API tokens; live status."""

from __future__ import annotations

import re

from webtest_support import Appliance, Client, expected_wav, ramp_pcm


def ids_on_page(html: str) -> list[str]:
    return re.findall(r'<a href="/recordings/([0-9TZ]+-[0-9a-f]{8})">', html)


def newest_id(app: Appliance) -> str:
    return str(app.store.page(0, 1)[0][0]["id"])


def test_list_is_paged_newest_first(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("supervisor")
    everything = [r["id"] for r in appliance.store.page(0, 100)[0]]
    assert everything == sorted(everything, reverse=True) and len(everything) == 5
    first = c.get("/recordings")
    assert first.status == 200
    assert ids_on_page(first.text) == everything[:3]  # page_size is 3 in the fixture
    assert 'href="/recordings?page=2"' in first.text and "Page 1 of 2" in first.text
    second = c.get("/recordings?page=2")
    assert ids_on_page(second.text) == everything[3:]
    assert 'href="/recordings?page=1"' in second.text
    assert c.get("/recordings?page=3").status == 404
    assert "+33123456789" in first.text  # the caller number of incoming calls
    assert 'datetime="2024-05-01T13:00:00Z"' in first.text


def test_detail_page(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("privacy")
    rec_id = next(r["id"] for r in appliance.store.page(0, 10)[0] if r["direction"] == "in")
    page = c.get(f"/recordings/{rec_id}").text
    assert f'<audio controls preload="metadata" src="/recordings/{rec_id}/audio">' in page
    assert f'href="/recordings/{rec_id}/download"' in page
    assert f'href="/recordings/{rec_id}/erase"' in page
    for shown in ("ab" * 32, "8000 Hz", "line1", "DUPONT J", "0:42", "Yes", "Hung up"):
        assert shown in page


def test_audio_supports_range_requests(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("supervisor")
    rec_id = newest_id(appliance)
    data = expected_wav(ramp_pcm(0.5))
    size = len(data)
    for path in (f"/recordings/{rec_id}/audio", f"/api/v1/recordings/{rec_id}/audio"):
        whole = c.get(path)
        assert whole.status == 200 and whole.body == data
        assert whole.header("Content-Type") == "audio/wav"
        assert whole.header("Accept-Ranges") == "bytes"
        assert "no-store" in (whole.header("Cache-Control") or "")
        assert (whole.header("Content-Disposition") or "").startswith("inline")
        part = c.get(path, headers={"Range": "bytes=100-199"})
        assert part.status == 206
        assert part.header("Content-Range") == f"bytes 100-199/{size}"
        assert part.header("Content-Length") == "100"
        assert part.body == data[100:200]
        tail = c.get(path, headers={"Range": "bytes=-10"})
        assert tail.status == 206 and tail.body == data[-10:]
        assert tail.header("Content-Range") == f"bytes {size - 10}-{size - 1}/{size}"
        assert c.get(path, headers={"Range": f"bytes={size + 10}-"}).status == 416


def test_download_is_an_attachment_named_by_id(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("supervisor")
    rec_id = newest_id(appliance)
    resp = c.get(f"/recordings/{rec_id}/download")
    assert resp.status == 200
    assert resp.header("Content-Disposition") == f'attachment; filename="callrec-{rec_id}.wav"'
    assert resp.body[:4] == b"RIFF" and resp.header("Content-Type") == "audio/wav"


def test_a_transcoded_recording_is_served_as_stored(appliance: Appliance) -> None:
    """After the transcoder: the page offers the Opus file, the player and the download get
    Ogg/Opus (decrypted, by range too), named by id and format."""
    from callrec.storage.codec import decode_file_bytes
    from callrec.transcoder import Transcoder

    rec_id = newest_id(appliance)
    tc = Transcoder(appliance.store, "compact")
    tc.start()
    assert tc.wait_idle(60) and tc.done == 5
    tc.stop()
    c = appliance.client()
    c.login("supervisor")
    page = c.get(f"/recordings/{rec_id}").text
    assert "Download (Opus)" in page and "<dd>OPUS</dd>" in page
    resp = c.get(f"/recordings/{rec_id}/download")
    assert resp.status == 200 and resp.header("Content-Type") == "audio/ogg; codecs=opus"
    assert resp.header("Content-Disposition") == f'attachment; filename="callrec-{rec_id}.opus"'
    assert resp.body[:4] == b"OggS"
    pcm, rate = decode_file_bytes(resp.body)
    assert rate == 8000 and pcm.size == len(ramp_pcm(0.5)) // 2
    part = c.get(f"/recordings/{rec_id}/audio", headers={"Range": "bytes=10-99"})
    assert part.status == 206 and part.body == resp.body[10:100]


def assert_erased(app: Appliance, rec_id: str) -> None:
    assert not app.store.has_files(rec_id)  # key, audio and sidecar
    assert app.store.get(rec_id) is None
    folder = app.store.sidecar_path(rec_id).parent
    assert not list(folder.glob(f"{rec_id}*"))
    assert not list((app.store.root.parent / "keys").glob(f"*/{rec_id}*"))


def test_erase_through_the_ui(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("privacy")
    rec_id = newest_id(appliance)
    confirm = c.get(f"/recordings/{rec_id}/erase")
    assert confirm.status == 200
    assert f'action="/recordings/{rec_id}/erase"' in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text
    assert c.post(f"/recordings/{rec_id}/erase", {}).status == 400  # no confirm=yes
    assert appliance.store.get(rec_id) is not None
    resp = c.post(f"/recordings/{rec_id}/erase", {"confirm": "yes"})
    assert (resp.status, resp.header("Location")) == (303, "/recordings")
    listing = c.get("/recordings").text
    assert "Recording erased" in listing and rec_id not in listing
    assert "Recording erased" not in c.get("/recordings").text  # shown once
    assert_erased(appliance, rec_id)
    assert c.get(f"/recordings/{rec_id}").status == 404
    assert c.post(f"/recordings/{rec_id}/erase", {"confirm": "yes"}).status == 404


def test_api_list_meta_and_delete(appliance: Appliance) -> None:
    token = appliance.users.create_token("privacy", "archiver")
    api = Client(appliance.port)
    auth = {"Authorization": f"Bearer {token}"}
    listing = api.get("/api/v1/recordings?offset=1&limit=2", headers=auth).json()
    everything = [r["id"] for r in appliance.store.page(0, 100)[0]]
    assert listing["total"] == 5 and listing["offset"] == 1
    assert [m["id"] for m in listing["items"]] == everything[1:3]
    rec_id = everything[0]
    meta = api.get(f"/api/v1/recordings/{rec_id}", headers=auth).json()
    assert meta["id"] == rec_id and meta["announcement"]["completed"] is True
    resp = api.request("DELETE", f"/api/v1/recordings/{rec_id}", headers=auth)
    assert resp.status == 200 and resp.json() == {"erased": rec_id}
    assert_erased(appliance, rec_id)
    resp = api.request("DELETE", f"/api/v1/recordings/{rec_id}", headers=auth)
    assert resp.status == 404 and resp.json() == {"error": "no such recording"}
    assert api.get("/api/v1/recordings", headers=auth).json()["total"] == 4


def test_api_tokens_create_use_revoke(appliance: Appliance) -> None:
    c = appliance.client()
    c.login("admin")
    resp = c.post("/account", {"action": "token_create", "label": "nightly export"})
    assert resp.status == 200 and "shown only once" in resp.text
    found = re.search(r'<code class="token">([A-Za-z0-9_-]+)</code>', resp.text)
    assert found is not None
    token = found.group(1)
    assert token not in (appliance.store.root.parent / "users.json").read_text()
    assert token not in c.get("/account").text  # not shown again
    api = Client(appliance.port)
    auth = {"Authorization": f"Bearer {token}"}
    assert api.get("/api/v1/recordings", headers=auth).status == 200
    assert api.get("/api/v1/status", headers=auth).status == 200
    assert c.post("/account", {"action": "token_create", "label": ""}).status == 400
    token_id = appliance.users.get("admin").tokens[0].id  # type: ignore[union-attr]
    assert c.post("/account", {"action": "token_revoke", "token_id": "0" * 16}).status == 404
    resp = c.post("/account", {"action": "token_revoke", "token_id": token_id})
    assert resp.status == 303 and "API token revoked" in c.get("/account").text
    assert api.get("/api/v1/recordings", headers=auth).status == 401
    # Only roles with tokens.own (admin) may make tokens.
    sup = appliance.client()
    sup.login("supervisor")
    assert "API tokens" not in sup.get("/account").text
    assert sup.post("/account", {"action": "token_create", "label": "x"}).status == 403


def test_status_page_and_api(appliance: Appliance) -> None:
    appliance.status.update(
        state="recording",
        recording=True,
        call={"direction": "in", "ring_count": 2, "answered": True, "number": "+33999999999"},
        faults=[
            {
                "part": "announcement",
                "name": "announcement",
                "detail": "No announcement: prompt file missing — calls are not recorded",
            }
        ],
        last_call={"outcome": "recorded", "direction": "out", "at": "2024-05-01T09:00:00+00:00"},
    )
    tech = appliance.client()
    tech.login("tech")
    page = tech.get("/status")
    assert page.status == 200
    assert '<script src="/static/status.js" defer></script>' in page.text
    assert "No announcement: prompt file missing — calls are not recorded" in page.text
    assert "Incoming, answered, 2 ring(s)" in page.text and "led-on" in page.text
    assert "Recorded (Outgoing)" in page.text and "Connected (hat-1.2)" in page.text
    assert 'data-key="st_rings">{n} ring(s)<' in page.text  # words for status.js
    snap = tech.get("/api/v1/status").json()
    assert snap["state"] == "recording" and snap["recording"] is True
    assert snap["call"]["direction"] == "in" and snap["call"]["answered"] is True
    for leak in ("+33999999999", "20240501T090000Z-0123abcd"):
        assert leak not in page.text and leak not in str(snap)
    assert "not pressed" in page.text
    assert "SIP line" not in page.text  # no SIP line configured: no section
    appliance.status.update(sip={"line": "sip", "calls": 1, "recording": 1,
                                 "outcomes": {"recorded": 4, "not_recorded": 1},
                                 "transport": {"received": 10, "sent": 9,
                                               "dropped": {"stranger": 3}},
                                 "relay": {"forwarded": 500, "ignored": {"announcement": 20}}})
    page = tech.get("/status")
    assert "SIP line – sip" in page.text
    assert "not recorded 1, recorded 4" in page.text and "stranger 3" in page.text
    assert tech.get("/api/v1/status").json()["sip"]["media"]["forwarded"] == 500
    appliance.status.update(next_call_private_until="2024-05-01T09:01:00+00:00")
    page = tech.get("/status")
    assert "pressed: the next call starting before" in page.text
    assert 'data-key="st_next_private"' in page.text  # status.js words

    def broken() -> dict[str, object]:
        raise TimeoutError

    appliance.ctx.status = broken
    snap = tech.get("/api/v1/status").json()
    assert snap["state"] == "unknown" and snap["faults"][0]["code"] == "daemon_unreachable"
    assert "The recorder does not answer" in tech.get("/status").text


def test_recordings_made_with_an_unsynchronised_clock_are_marked(appliance: Appliance) -> None:
    from datetime import UTC, datetime

    from webtest_support import add_recording

    from callrec.clock import CLOCK_NOTE

    unverified = add_recording(appliance.store, datetime(2024, 5, 2, 9, 0, tzinfo=UTC),
                               clock_synchronised=False, clock_note=CLOCK_NOTE)
    verified = add_recording(appliance.store, datetime(2024, 5, 2, 8, 0, tzinfo=UTC),
                             clock_synchronised=True)
    c = appliance.client()
    c.login("supervisor")
    page = c.get("/recordings").text
    assert ids_on_page(page)[:2] == [unverified, verified]
    # Older recordings (no field) are not marked.
    assert page.count('class="time-unverified"') == 1 and ">⚠ time unverified</span>" in page
    row = page[page.index(unverified):page.index(verified)]
    assert 'class="time-unverified" role="note"' in row
    assert 'title="Recorded while the appliance&#039;s clock was not synchronised' in row
    detail = c.get(f"/recordings/{unverified}").text
    assert '<p class="warning time-unverified" role="note">⚠ time unverified: Recorded' in detail
    assert "Not synchronised: ⚠ time unverified" in detail
    assert "time unverified" not in c.get(f"/recordings/{verified}").text
    items = {r["id"]: r for r in c.get("/api/v1/recordings").json()["items"]}
    assert items[unverified]["clock_synchronised"] is False
    assert items[unverified]["clock_note"] == CLOCK_NOTE
    assert items[verified]["clock_synchronised"] is True
    assert c.get(f"/api/v1/recordings/{unverified}").json()["clock_synchronised"] is False


def test_status_page_shows_the_clock(appliance: Appliance) -> None:
    tech = appliance.client()
    tech.login("tech")
    page = tech.get("/status").text  # a daemon that says nothing about it
    assert '<p data-field="clock_warning" class="warning" role="status" hidden>' in page
    assert tech.get("/api/v1/status").json()["clock"] is None
    appliance.status.update(clock={"synchronised": False, "source": "NTP (kernel clock state)",
                                   "detail": "no time server has set the clock", "x": "y"})
    page = tech.get("/status").text
    assert '<p data-field="clock_warning" class="warning" role="status">Clock not synchronised:' \
        in page
    assert 'data-field="clock">NOT synchronised (NTP (kernel clock state))<' in page
    assert 'data-key="st_clock_sync">Synchronised ({source})<' in page  # words for status.js
    assert tech.get("/api/v1/status").json()["clock"] == {
        "synchronised": False, "source": "NTP (kernel clock state)",
        "detail": "no time server has set the clock"}
    appliance.status.update(clock={"synchronised": True, "source": "NTP (systemd-timesyncd)"})
    page = tech.get("/status").text
    assert 'data-field="clock">Synchronised (NTP (systemd-timesyncd))<' in page
    assert 'data-field="clock_warning" class="warning" role="status" hidden>' in page
