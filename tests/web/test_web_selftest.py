"""The self-test page and /api/v1/selftest: who may run it, CSRF, the result, 409 in a call."""

from __future__ import annotations

import re

from webtest_support import Appliance, FakeSelfTest


def _runner(app: Appliance) -> FakeSelfTest:
    runner = app.ctx.selftest
    assert isinstance(runner, FakeSelfTest)
    return runner


def test_page_shows_the_last_result_and_runs_on_post(appliance: Appliance) -> None:
    runner = _runner(appliance)
    runner.statuses = {"board": "ok", "audio": "fail", "clock": "warn"}
    c = appliance.client()
    c.login("tech")
    page = c.get("/selftest")
    assert page.status == 200
    assert '<a href="/selftest" aria-current="page">Self-test</a>' in page.text
    assert 'action="/selftest"' in page.text and "Run the self-test" in page.text
    resp = c.post("/selftest", {})
    assert resp.status == 303 and resp.header("Location") == "/selftest#result"
    assert runner.runs == 1
    page = c.get("/selftest").text
    assert "Failed" in page and "fix the audio" in page and "audio detail 1" in page
    # Accessible table: a caption, column and row headers.
    assert "<caption" in page and '<th scope="col">What to do</th>' in page
    assert re.search(r'<th scope="row">Audio path[^<]*</th>', page)


def test_post_needs_the_csrf_token(appliance: Appliance) -> None:
    runner = _runner(appliance)
    c = appliance.client()
    c.login("admin")
    assert c.post("/selftest", {"csrf_token": "A" * 43}).status == 403
    assert c.request("POST", "/api/v1/selftest",
                     headers={"Origin": f"http://127.0.0.1:{appliance.port}"}).status == 403
    assert runner.runs == 0


def test_during_a_call_the_answer_is_409(appliance: Appliance) -> None:
    runner = _runner(appliance)
    runner.busy = True
    c = appliance.client()
    c.login("tech")
    page = c.post("/selftest", {})
    assert page.status == 409 and "a call is in progress, try again after it" in page.text
    api = c.request("POST", "/api/v1/selftest", headers={
        "Origin": f"http://127.0.0.1:{appliance.port}", "X-CSRF-Token": c.csrf_token()})
    assert api.status == 409
    assert api.json() == {"error": "a call is in progress, try again after it"}
    assert runner.runs == 0


def test_api_with_a_token_runs_without_csrf(appliance: Appliance) -> None:
    runner = _runner(appliance)
    token = appliance.users.create_token("tech", "selftest")
    c = appliance.client()
    resp = c.request("POST", "/api/v1/selftest", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, resp.text
    report = resp.json()
    assert report["overall"] == "ok" and [r["item"] for r in report["results"]] == [
        "board", "audio", "storage"]
    assert runner.runs == 1
    last = c.request("GET", "/api/v1/selftest", headers={"Authorization": f"Bearer {token}"})
    assert last.json() == report


def test_roles_that_may_not_run_it_do_not_see_it(appliance: Appliance) -> None:
    for role in ("supervisor", "privacy"):
        c = appliance.client()
        c.login(role)
        assert "/selftest" not in c.get("/account").text
        assert c.get("/selftest").status == 403
    assert _runner(appliance).runs == 0


def test_without_the_daemon_the_page_says_so(appliance: Appliance) -> None:
    appliance.ctx.selftest = None
    c = appliance.client()
    c.login("admin")
    page = c.get("/selftest")
    assert page.status == 200 and "Run the self-test" not in page.text
    assert "No self-test has run yet" in page.text
    assert c.post("/selftest", {}).status == 503
