"""A minimal client of the appliance's JSON API, authenticated by an API token."""

from __future__ import annotations

import urllib.error
import urllib.request

from callrec.sim.harness import Appliance
from callrec_web.users import UserStore


def api_token(app: Appliance) -> str:
    users = UserStore(app.config.data_dir / "users.json")
    if users.get("e2e") is None:
        users.add_user("e2e", "correct horse battery staple", ["admin"])
    return users.create_token("e2e", "end-to-end test")


def api(app: Appliance, token: str, path: str, method: str = "GET",
        headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(app.base_url + path, method=method,
                                 headers={"Authorization": f"Bearer {token}", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()
