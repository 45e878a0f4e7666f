"""The web UI over HTTP (in process, through Starlette's test client) on every backend:
every page on the demo data, escaping, the cross-site checks, approvals, team import and
export, paging, error pages, and a token that never reaches the page."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from starlette.testclient import TestClient

import sqlstore
from sqlstore.cli import main
from sqlstore.ui.actions import decision_message_id
from sqlstore.ui.app import create_app, public_url
from tests.conftest import unique

BASE = "http://127.0.0.1:8765"
PAGES = (
    "/",
    "/?sizes=1",
    "/threads",
    "/forks",
    "/approvals",
    "/feedback",
    "/teams",
    "/checkpoints",
)
FOLLOWED = ("/thread", "/forks", "/team", "/session", "/checkpoints", "/checkpoint")


def ui(url: str, *, read_only: bool = False, token: str | None = None) -> TestClient:
    """A test client on a UI app over ``url``."""
    app = create_app(sqlstore.Store(url, auth_token=token), database_url=url, read_only=read_only)
    return TestClient(app, base_url=BASE)


@pytest.fixture
def demo(db_url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Seed the demo on the backend; the ids of its support thread (``root``), its
    conversation (``session``), its team (``team``) and its checkpointed threads (``graph``:
    generic, ``langgraph``: stopped at an interrupt)."""
    assert main(["--url", db_url, "demo"]) == 0
    match = re.search(
        r"kept for `sqlstore ui`: thread (\S+) with 3 forks, conversation (\S+),.* team (\S+) "
        r".* graph threads (\S+) (\S+)\n",
        capsys.readouterr().out,
    )
    assert match, "the demo says what it kept"
    names = ("root", "session", "team", "graph", "langgraph")
    return dict(zip(names, match.groups(), strict=True))


@pytest.fixture
def web(db_url: str) -> Iterator[TestClient]:
    with ui(db_url) as client:
        yield client


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[sqlstore.Store]:
    async with sqlstore.Store(db_url) as s:
        yield s


def links(html: str, prefixes: tuple[str, ...]) -> list[str]:
    """The page's links to the given paths, unescaped."""
    found = [h.replace("&amp;", "&") for h in re.findall(r'href="(/[^"]*)"', html)]
    return [h for h in found if h.split("?")[0] in prefixes]


def walk(client: TestClient, start: tuple[str, ...], limit: int = 80) -> dict[str, str]:
    """Every page reachable from ``start`` through the followed links (at most ``limit``);
    each must answer 200."""
    seen: dict[str, str] = {}
    queue = list(start)
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[-500:])
        seen[path] = r.text
        queue += [h for h in links(r.text, FOLLOWED) if h not in seen]
    return seen


def test_every_page_renders_the_demo(demo: dict[str, str], web: TestClient) -> None:
    demo_root = demo["root"]
    start = (
        f"/thread?id={demo_root}",
        f"/forks?id={demo_root}",
        f"/team?id={demo['team']}",
        f"/checkpoints?thread_id={demo['graph']}",
        f"/checkpoints?thread_id={demo['langgraph']}",
    )
    pages = walk(web, (*PAGES, *start))
    chat = pages[f"/thread?id={demo_root}"]
    assert "tool call: lookup_payments" in chat and "tool result" in chat
    assert '<img class="image" src="data:image/png;base64,' in chat
    assert "metadata" in chat and "I was charged twice." in chat
    assert chat.index("Refunded 19.99.") < chat.index("I was charged twice.")  # newest first
    assert f'href="/forks?id={demo_root}">tree</a>' in pages["/threads"]  # a root with forks
    tree = pages[f"/forks?id={demo_root}"]
    assert tree.count('class="node"') == 4 and "forked after #" in tree
    approvals = pages["/approvals"]
    assert "refund_review" in approvals and "close" in approvals and "Approve" in approvals
    assert "<svg" in pages["/feedback"] and "Mean rating per agent" in pages["/feedback"]
    session = web.get(links(pages[f"/team?id={demo['team']}"], ("/session",))[0]).text
    assert session.count('<section class="run">') == 2 and "APPROVE" in session

    def newest_checkpoint(thread_id: str) -> str:
        listed = pages[f"/checkpoints?thread_id={thread_id}"]
        return web.get(links(listed, ("/checkpoint",))[0]).text

    stopped = newest_checkpoint(demo["langgraph"])
    assert "Interrupted" in stopped and "Publish this draft?" in stopped
    generic = newest_checkpoint(demo["graph"])
    assert '<tr class="added"><td>notes</td>' in generic
    assert '<tr class="changed"><td>plan</td>' in generic
    by_session = web.get(f"/threads?session_id={demo['session']}").text
    assert len(ids(by_session)) == 2 and "billing" in by_session and "tech" in by_session
    overview = pages["/"]
    assert "schema version" in overview and "checkpoint_writes" in overview
    assert "Measure the size" in overview and re.search(r"\d+(\.\d)? kB|n/a", pages["/?sizes=1"])
    for html in pages.values():
        assert "Traceback" not in html


def test_team_config_as_yaml_and_download(demo: dict[str, str], web: TestClient) -> None:
    tid = demo["team"]
    assert f'href="/team?id={tid}"' in web.get("/teams?user_id=demo-user").text
    assert "label: Demo research team" in web.get(f"/team?id={tid}&format=yaml").text
    r = web.get(f"/team/export?id={tid}&format=json")
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.json()["label"] == "Demo research team"


async def test_a_hostile_message_renders_as_text(store: sqlstore.Store, web: TestClient) -> None:
    t = await store.threads.create(unique("user"), title="<script>alert('t')</script>")
    await store.threads.add_messages(
        t.id,
        [
            {"role": "user", "content": [{"text": "<script>alert(1)</script><b>x</b>"}]},
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/svg+xml",
                            "data": "PHN2Zz4=",
                        },
                    },
                    {"type": "image_url", "image_url": {"url": "javascript:alert(1)"}},
                ],
                "metadata": {"note": '"><script>alert(2)</script>'},
            },
        ],
    )
    r = web.get(f"/thread?id={t.id}")
    assert r.status_code == 200
    assert "<script>" not in r.text and "<b>x</b>" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in r.text
    assert "data:image/svg" not in r.text.split("<pre>")[0] and "<img" not in r.text
    assert "script-src" not in r.headers["content-security-policy"]  # no scripts at all
    assert "default-src 'none'" in r.headers["content-security-policy"]


def csrf_token(client: TestClient) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', client.get("/teams").text)
    assert match
    return match.group(1)


async def test_approve_through_a_checked_post(store: sqlstore.Store, web: TestClient) -> None:
    t = await store.threads.create(unique("user"))
    a = await store.approvals.save({"step": "refund"}, thread_id=t.id, node="review")
    token = csrf_token(web)
    form = {"id": a.id, "decision": "approved", "csrf": token}
    refused = [
        web.post("/approvals/decide", data={**form, "csrf": "forged"}),
        web.post("/approvals/decide", data={k: v for k, v in form.items() if k != "csrf"}),
        web.post("/approvals/decide", data=form, headers={"origin": "http://evil.example"}),
        web.post("/approvals/decide", data=form, headers={"origin": "null"}),
        web.post("/approvals/decide", data=form, headers={"sec-fetch-site": "cross-site"}),
        web.get(f"/approvals/decide?id={a.id}&decision=approved&csrf={token}"),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403, 403, 403, 405]
    assert await store.approvals.get(a.id) is not None  # nothing changed
    r = web.post(
        "/approvals/decide",
        data=form,
        headers={"origin": BASE, "sec-fetch-site": "same-origin"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert await store.approvals.get(a.id) is None
    assert a.id not in web.get("/approvals").text.split("<h2>Expired</h2>")[0]
    decision = (await store.threads.recent_messages(t.id))[-1]
    assert decision.id == decision_message_id(a.id)
    assert decision.metadata["decision"] == "approved" and decision.metadata["node"] == "review"
    again = web.post("/approvals/decide", data={**form, "decision": "rejected"})
    assert again.status_code == 404  # decided already: the first decision stands
    assert len(await store.threads.recent_messages(t.id)) == 1


async def test_read_only_shows_no_actions_and_refuses_posts(
    db_url: str, store: sqlstore.Store
) -> None:
    a = await store.approvals.save({"step": "x"}, node="ro")
    with ui(db_url, read_only=True) as client:
        page = client.get("/approvals").text
        assert "read-only" in page and "Approve" not in page and 'name="csrf"' not in page
        r = client.post("/approvals/decide", data={"id": a.id, "decision": "approved"})
        assert r.status_code == 403 and "read-only" in r.text
    assert await store.approvals.get(a.id) is not None


def test_team_import_from_an_upload_dedupes(web: TestClient) -> None:
    user = unique("user")
    config = b'{"label": "uploaded", "component_type": "team", "config": {"n": 1}}'
    token = csrf_token(web)
    results = []
    for _ in range(2):
        r = web.post(
            "/teams/import",
            data={"csrf": token, "user_id": user, "dedupe": "1"},
            files={"file": ("team.json", config, "application/json")},
        )
        assert r.status_code == 200
        results.append(re.search(r"Imported: ([^<]+)", r.text))
    first, second = (m.group(1) if m else "" for m in results)
    assert first.startswith("created: ") and second.startswith("already there: ")
    assert first.split(": ")[1] == second.split(": ")[1]
    bad = web.post(
        "/teams/import",
        data={"csrf": token, "user_id": user},
        files={"file": ("team.txt", b"{}", "text/plain")},
    )
    assert bad.status_code == 400 and "must end in .json" in bad.text


async def test_threads_page_by_keyset(store: sqlstore.Store, web: TestClient) -> None:
    user = unique("user")
    for i in range(55):
        await store.threads.create(user, title=f"paged {i}", created_at=1_000_000 + i)
    first = web.get(f"/threads?user_id={user}").text
    older = [h for h in links(first, ("/threads",)) if "before=" in h]
    assert len(older) == 1
    second = web.get(older[0]).text
    assert len(ids(first)) == 50 and len(ids(second)) == 5 and not ids(first) & ids(second)
    assert len(ids(web.get(f"/threads?q=PAGED 7&user_id={user}").text)) == 1  # title search
    some = next(iter(ids(second)))
    assert ids(web.get(f"/threads?q={some}").text) == {some}  # id search


async def test_expired_approvals_by_keyset(store: sqlstore.Store, web: TestClient) -> None:
    mine = {(await store.approvals.save({"n": i}, ttl=0.001)).id for i in range(55)}
    await asyncio.sleep(0.01)
    seen: list[str] = []
    page: str | None = "/approvals"
    while page is not None:
        html = web.get(page).text.split("<h2>Expired</h2>")[1]
        seen += re.findall(r"<tr><td><code>([^<]+)</code>", html)
        more = [h for h in links(html, ("/approvals",)) if "expired_before=" in h]
        page = more[0] if more else None
    assert len(seen) == len(set(seen)) and mine <= set(seen)


def ids(html: str) -> set[str]:
    """The thread ids a page links to."""
    return set(re.findall(r'href="/thread\?id=([^"]+)"', html))


def test_errors_show_a_page_without_internals(web: TestClient) -> None:
    missing = web.get("/thread?id=no-such-thread")
    assert missing.status_code == 404 and "<h1>Error 404</h1>" in missing.text
    bad = web.get("/threads?before=garbage")
    assert bad.status_code == 400 and "page position" in bad.text
    assert web.get("/thread").status_code == 400
    assert web.get("/nowhere").status_code == 404
    for r in (missing, bad):
        assert "Traceback" not in r.text and 'File "' not in r.text


async def test_an_internal_error_is_a_page_without_a_traceback(
    db_url: str, store: sqlstore.Store
) -> None:
    thread_id = unique("graph")
    await store.checkpoints.save(thread_id, "c1", b"\xc1 not msgpack", type="msgpack")
    app = create_app(sqlstore.Store(db_url), database_url=db_url)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as client:
        r = client.get(f"/checkpoint?thread_id={thread_id}&id=c1")
    assert r.status_code == 500 and "Internal error" in r.text
    assert "Traceback" not in r.text and "msgpack" not in r.text.split("<main>")[1]


def test_a_foreign_host_header_is_refused(web: TestClient) -> None:
    assert web.get("/", headers={"host": "attacker.example"}).status_code == 400


def test_the_token_never_reaches_the_page(sqld_server: object) -> None:
    url = getattr(sqld_server, "url")  # noqa: B009 - the fixture's type is not imported
    secret = "sekrit-" + unique("token")
    assert secret not in public_url(f"{url}?authToken={secret}")
    assert public_url(f"https://user:{secret}@db.example:8443/x?t=1") == "https://db.example:8443/x"
    app = create_app(
        sqlstore.Store(url, auth_token=secret), database_url=f"{url}?authToken={secret}"
    )
    with TestClient(app, base_url=BASE) as client:
        pages = walk(client, PAGES, limit=30)
        bad = client.get("/thread?id=missing")
    for html in [*pages.values(), bad.text]:
        assert secret not in html
    assert url.split("//")[1] in pages["/"]
