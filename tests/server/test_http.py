"""The plain HTTP routes: health, metrics and the web client's page."""

from __future__ import annotations

import httpx

from tests.conftest import ServerFactory


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
