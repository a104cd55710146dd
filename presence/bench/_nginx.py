"""Debian's nginx in front of a benchmark's server, with the repository's balancing config
(deploy/nginx/presence-lb.conf) rendered for plain HTTP on loopback and this run's backends."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from presence.testing.servers import PACKAGE_ROOT, free_port

LB_CONF = Path(PACKAGE_ROOT) / "deploy" / "nginx" / "presence-lb.conf"


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def render(conf: str, listen_port: int, upstream_ports: list[int]) -> str:
    """The config without TLS, listening on ``listen_port``, balancing over ``upstream_ports``."""
    lines: list[str] = []
    servers_done = False
    for line in conf.splitlines():
        stripped = line.strip()
        if stripped.startswith("ssl_"):
            continue
        if stripped == "listen 443 ssl;":
            line = line.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen_port};")
        if stripped.startswith("server 127.0.0.1:"):
            if servers_done:
                continue
            servers_done = True
            indent = line[: len(line) - len(line.lstrip())]
            lines += [f"{indent}server 127.0.0.1:{port} max_fails=1 fail_timeout=10s;" for port in upstream_ports]
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def nginx_in_front(upstream_ports: list[int], max_connections: int = 4096) -> Iterator[int]:
    """nginx (one worker process) on a free loopback port; yields the port."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is missing (apt-get install nginx), or run with --no-nginx")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="presence-bench-nginx-"))
    (folder / "site.conf").write_text(render(LB_CONF.read_text(), port, upstream_ports))
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\nworker_rlimit_nofile {2 * max_connections + 64};\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log error;\n"
        f"events {{ worker_connections {max_connections}; }}\n"
        f"http {{\n access_log off;\n client_body_temp_path {folder}/body;\n proxy_temp_path {folder}/proxy;\n"
        f" fastcgi_temp_path {folder}/fcgi;\n uwsgi_temp_path {folder}/uwsgi;\n scgi_temp_path {folder}/scgi;\n"
        f" include {folder}/site.conf;\n}}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(folder / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                log = folder / "error.log"
                raise RuntimeError(f"nginx did not start: {log.read_text() if log.exists() else ''}")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
