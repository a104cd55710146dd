"""Debian's nginx in a private prefix, in front of presence on loopback: the repository's
configurations (deploy/nginx/) rendered with this run's ports, and TLS certificate or none.

One runner for the proxy test, the load-balancing tests and ``presence bench scale``.
"""

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

DEPLOY = Path(PACKAGE_ROOT) / "deploy" / "nginx"
PROXY_CONF = DEPLOY / "presence.conf"  # one backend, TLS
LB_CONF = DEPLOY / "presence-lb.conf"  # balancing over backends, TLS


class NginxMissing(RuntimeError):
    """nginx is not installed (`make test` installs Debian's as root)."""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise NginxMissing("nginx is missing: `make test` installs Debian's nginx as root (apt-get install nginx)")
    return found


def render(conf: str, listen_port: int, upstream_ports: list[int], tls: tuple[Path, Path] | None = None) -> str:
    """``conf`` listening on loopback ``listen_port`` and balancing over ``upstream_ports``;
    with ``tls`` (certificate, key) it keeps TLS with those files, without it plain HTTP."""
    lines: list[str] = []
    servers_done = False
    for line in conf.splitlines():
        stripped = line.strip()
        if stripped.startswith("ssl_") and tls is None:
            continue
        if stripped == "listen 443 ssl;":
            line = line.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen_port}{' ssl' if tls else ''};")
        if stripped.startswith("server 127.0.0.1:"):
            if servers_done:
                continue
            servers_done = True
            indent = line[: len(line) - len(line.lstrip())]
            _, _, options = stripped.removeprefix("server ").rstrip(";").partition(" ")
            tail = f" {options};" if options else ";"
            lines += [f"{indent}server 127.0.0.1:{port}{tail}" for port in upstream_ports]
            continue
        lines.append(line)
    site = "\n".join(lines) + "\n"
    if tls is not None:
        cert, key = tls
        site = site.replace("/etc/ssl/presence/fullchain.pem", str(cert)).replace(
            "/etc/ssl/presence/privkey.pem", str(key)
        )
    return site


@contextlib.contextmanager
def nginx_in_front(
    upstream_ports: list[int],
    conf: Path = LB_CONF,
    tls: tuple[Path, Path] | None = None,
    max_connections: int = 256,
) -> Iterator[int]:
    """nginx (one worker process) with ``conf`` on a free loopback port; yields the port.

    The configuration is checked with ``nginx -t`` first, so a broken one fails with nginx's
    own message rather than as a refused connection."""
    binary = nginx_binary()
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="presence-nginx-"))
    (folder / "site.conf").write_text(render(conf.read_text(), port, upstream_ports, tls))
    (folder / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\nworker_rlimit_nofile {2 * max_connections + 64};\n"
        f"pid {folder}/nginx.pid;\nerror_log {folder}/error.log warn;\n"
        f"events {{ worker_connections {max_connections}; }}\n"
        f"http {{\n access_log off;\n client_body_temp_path {folder}/body;\n proxy_temp_path {folder}/proxy;\n"
        f" fastcgi_temp_path {folder}/fcgi;\n uwsgi_temp_path {folder}/uwsgi;\n scgi_temp_path {folder}/scgi;\n"
        f" include {folder}/site.conf;\n}}\n"
    )
    config = ["-p", str(folder), "-c", str(folder / "nginx.conf")]
    check = subprocess.run([binary, "-t", *config], capture_output=True, text=True)
    if check.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"nginx rejected the configuration: {check.stderr}")
    process = subprocess.Popen([binary, *config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
