"""The plain HTTP routes: health, metrics and the web client's page."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.websockets import WebSocket

from presence.config import Settings
from presence.engines import create_engine
from presence.server.app import WEB_DIR, Hub, web_files
from presence.server.transport import Transport
from tests.conftest import ServerFactory, run_uvicorn


async def test_health_metrics_and_page_are_served(server_factory: ServerFactory) -> None:
    async with server_factory() as srv, httpx.AsyncClient(base_url=srv.http) as http:
        health = (await http.get("/healthz")).json()
        assert health == {"status": "ok"}, "health tells nothing about the engine or the sessions"
        metrics = (await http.get("/metrics")).text
        assert "presence_sessions_active 0.0" in metrics
        assert "presence_turn_first_audio_seconds_bucket" in metrics
        page = await http.get("/")
        assert page.status_code == 200
        assert "<html" in page.text.lower()


async def test_three_js_is_served_over_http_as_it_is_on_disk(server_factory: ServerFactory) -> None:
    """The GLB head needs three.js from node_modules: the check is the HTTP answer, not the
    file on disk (a symlinked node_modules once served 404 while the file was there)."""
    three = WEB_DIR / "node_modules" / "three" / "build" / "three.module.js"
    assert three.is_file(), "three.js is not installed: run `make web-modules` (npm ci in presence/web)"
    async with server_factory() as srv, httpx.AsyncClient(base_url=srv.http) as http:
        answer = await http.get("/node_modules/three/build/three.module.js")
        manifest = await http.get("/node_modules/three/package.json")
    assert answer.status_code == 200
    assert answer.content == three.read_bytes()
    assert manifest.status_code == 404, "package manifests stay hidden"


async def test_the_web_files_follow_a_symlinked_node_modules(tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "three" / "build"
    shared.mkdir(parents=True)
    (shared / "three.module.js").write_text("export const REVISION = 'test';\n")
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<html></html>\n")
    (web / "node_modules").symlink_to(tmp_path / "shared", target_is_directory=True)
    app = Starlette(routes=[Mount("/", web_files(web), name="web")])
    async with run_uvicorn(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        answer = await http.get("/node_modules/three/build/three.module.js")
    assert answer.status_code == 200
    assert answer.text == "export const REVISION = 'test';\n"


async def test_going_away_leaves_no_task_behind_when_a_session_outlives_the_timeout() -> None:
    """A transport that never finishes (here: one that never ran) must not leak its waiter."""
    hub = Hub(Settings(engine="scripted", vad="energy"), create_engine(Settings(engine="scripted")))
    stuck = Transport(cast(WebSocket, None), hub.caps, "scripted", hub.make_session, hub.metrics, hub.transport_config)
    hub.transports.add(stuck)
    before = asyncio.all_tasks()
    await hub.going_away(timeout_s=0.01)
    assert stuck._close_request is not None, "the session was asked to close"
    assert asyncio.all_tasks() == before, "no waiter task outlives going_away"
