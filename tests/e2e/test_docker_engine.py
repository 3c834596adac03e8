"""The private Docker engine fixture: a real dockerd, images made by `docker import`, host networking."""

from __future__ import annotations

import subprocess

from support.net import free_port, http_ok, wait_until


def test_engine_answers_and_runs_an_imported_image(docker_engine, busybox_image):
    client = docker_engine.client()
    assert client.ping() is True
    out = client.containers.run(busybox_image, ["/bin/echo", "hello from busybox"], network_mode="host", remove=True)
    assert out.decode().strip() == "hello from busybox"


def test_host_networking_serves_on_loopback(docker_engine, busybox_image, tmp_path):
    """A container's server is reachable on 127.0.0.1 of the host (network_mode: host)."""
    port = free_port()
    client = docker_engine.client()
    c = client.containers.run(
        busybox_image,
        ["/bin/sh", "-c", f"mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"],
        network_mode="host",
        detach=True,
    )
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/index.html"), timeout=30, what="busybox httpd")
    finally:
        c.remove(force=True)


def test_docker_cli_talks_to_the_engine(docker_engine, busybox_image):
    r = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
                       env=docker_engine.env(), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert busybox_image in r.stdout.split()
