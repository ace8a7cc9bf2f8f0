"""nginx (Debian's package) in front of service processes on this machine, as in compose."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.service.processes import free_port

_CONFIG = """
{user}
worker_processes 2;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream service {{
        {servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://service;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"""


@contextmanager
def reverse_proxy(ports: list[int], folder: Path) -> Iterator[str]:
    """nginx balancing over the services on ``ports``; yields its base URL."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(binary).exists(), "nginx is not installed (Debian's nginx package)"
    folder.mkdir(parents=True)
    port = free_port()
    config = folder / "nginx.conf"
    config.write_text(
        _CONFIG.format(
            # As root, nginx's workers would otherwise become nobody, who cannot enter the
            # test's private temporary folder.
            user="user root;" if os.geteuid() == 0 else "",
            folder=folder,
            servers="\n        ".join(f"server 127.0.0.1:{backend};" for backend in ports),
            port=port,
        )
    )
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(config), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_listening(process, url, folder)
        yield url
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def _wait_until_listening(process: subprocess.Popen[bytes], url: str, folder: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise AssertionError(f"nginx exited: {error} {(folder / 'error.log').read_text()}")
        try:
            httpx.get(f"{url}/health", timeout=1)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "nginx did not start listening"
            time.sleep(0.05)
