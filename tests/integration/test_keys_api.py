"""API keys over HTTP: who am I, create (secret shown once), list, get, revoke."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.main import create_app
from core.settings import Settings


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_list_revoke_and_me(client: TestClient, settings: Settings) -> None:
    me = client.get("/v1/auth/me").json()
    assert me["auth_enabled"] is True
    assert me["scopes"] == ["recommend", "events", "catalog", "admin"]
    caller = me["key"]["key_id"]

    res = client.post("/v1/admin/keys", json={"name": "web app", "scopes": ["recommend"]})
    assert res.status_code == 201, res.text
    assert res.headers["cache-control"] == "no-store"
    made = res.json()
    assert res.headers["location"] == f"/v1/admin/keys/{made['key_id']}"
    assert made["key"].startswith(f"vtg_{made['key_id']}_")
    assert made["rate_per_s"] == settings.auth.default_rate_per_s
    assert made["burst"] == settings.auth.default_burst

    # The new key works for its scope only, and says so.
    own = client.get("/v1/auth/me", headers=_bearer(made["key"])).json()
    assert own["scopes"] == ["recommend"] and own["key"]["name"] == "web app"
    assert client.get("/v1/admin/keys", headers=_bearer(made["key"])).status_code == 403

    listed = client.get("/v1/admin/keys").json()["items"]
    assert made["key_id"] in [k["key_id"] for k in listed]
    assert all("key" not in k and "hash" not in k for k in listed)  # secrets never listed
    got = client.get(f"/v1/admin/keys/{made['key_id']}").json()
    assert got["name"] == "web app" and got["revoked_at"] is None

    revoke = f"/v1/admin/keys/{made['key_id']}/revoke"
    first = client.post(revoke).json()
    assert first["revoked_at"] is not None
    assert client.post(revoke).json() == first  # again: nothing changes
    # Revoked in this process at once (no 5 s cache grace).
    assert client.get("/v1/auth/me", headers=_bearer(made["key"])).status_code == 401
    ids = [k["key_id"] for k in client.get("/v1/admin/keys").json()["items"]]
    assert made["key_id"] not in ids
    all_ = client.get("/v1/admin/keys", params={"revoked": "true"}).json()["items"]
    revoked = next(k for k in all_ if k["key_id"] == made["key_id"])
    assert revoked["revoked_at"] is not None

    # Nobody locks themselves out; unknown ids are 404, malformed ones 422.
    own_revoke = client.post(f"/v1/admin/keys/{caller}/revoke")
    assert own_revoke.status_code == 409
    assert "another admin key" in own_revoke.json()["error"]["message"]
    assert client.get("/v1/auth/me").status_code == 200
    assert client.post("/v1/admin/keys/0123456789ab/revoke").status_code == 404
    assert client.get("/v1/admin/keys/nope").status_code == 422


def test_create_validates_and_sets_limits(client: TestClient) -> None:
    for bad, says in [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["root"]}, "scopes"),
        ({"name": "   ", "scopes": ["events"]}, "name"),
        ({"name": "x", "scopes": ["events"], "rate_per_s": 0}, "rate_per_s"),
        ({"name": "x", "scopes": ["events"], "secret": "mine"}, "secret"),
    ]:
        res = client.post("/v1/admin/keys", json=bad)
        assert res.status_code == 422, (bad, res.text)
        assert says in res.json()["error"]["message"], res.text
    res = client.post(
        "/v1/admin/keys",
        json={
            "name": "importer",
            "scopes": ["events", "catalog", "events"],
            "rate_per_s": 5,
            "burst": 7,
        },
    )
    made = res.json()
    assert (made["scopes"], made["rate_per_s"], made["burst"]) == (["events", "catalog"], 5.0, 7)


def test_me_without_auth(settings: Settings) -> None:
    s = settings.model_copy(update={"auth": settings.auth.model_copy(update={"enabled": False})})
    with TestClient(create_app(s)) as c:
        me = c.get("/v1/auth/me").json()
    assert me == {
        "auth_enabled": False,
        "key": None,
        "scopes": ["recommend", "events", "catalog", "admin"],
    }


def test_known_users_are_listed_by_prefix_in_pages(client: TestClient, settings: Settings) -> None:
    for n in range(7):
        assert client.put(f"/v1/users/shop-{n}", json={"region": "FR"}).status_code == 200
    assert client.put("/v1/users/other-1", json={}).status_code == 200
    page = client.get("/v1/admin/users", params={"prefix": "shop-"}).json()
    assert page["items"] == [f"shop-{n}" for n in range(7)] and page["next_cursor"] is None
    seen: list[str] = []
    cursor = "0"
    while True:  # pages of about 2 follow the set's order and end
        got = client.get("/v1/admin/users", params={"limit": 2, "cursor": cursor}).json()
        seen += got["items"]
        if got["next_cursor"] is None:
            break
        cursor = got["next_cursor"]
    assert sorted(seen) == sorted([*(f"shop-{n}" for n in range(7)), "other-1"])
    assert client.get("/v1/admin/users", params={"prefix": "sh*p"}).status_code == 422
    huge = client.get("/v1/admin/users", params={"cursor": "99999999999999999999"})
    assert huge.status_code == 422 and "next_cursor" in huge.json()["error"]["message"]
    token = client.post("/v1/admin/keys", json={"name": "app", "scopes": ["events"]}).json()["key"]
    denied = client.get("/v1/admin/users", headers={"Authorization": f"Bearer {token}"})
    assert denied.status_code == 403  # user ids are personal data
