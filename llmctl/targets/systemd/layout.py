"""Where the systemd target puts things, for the system manager and for `--user` units.

A deployment is three kinds of unit (systemd.unit(5) names):
  <slug>-proxy.service   HAProxy on the spec's address and port (the only thing that listens there)
  <slug>-blue.service    the engine, one colour, on a private port on 127.0.0.1
  <slug>-green.service   the other colour, present only while an update runs (or after a failed one)
Each colour is its own unit rather than two instances of a template: the two colours of an update run
different versions (command line, model, environment), which one template cannot describe.

                 system manager                      --user
unit files       /etc/systemd/system/                $XDG_CONFIG_HOME/systemd/user/ (~/.config/…)
env + proxy cfg  /etc/llmctl/                        $XDG_CONFIG_HOME/llmctl/
admin socket     /run/llmctl/<slug>-proxy/           $XDG_RUNTIME_DIR/llmctl/<slug>-proxy/
(the socket's folder is the proxy unit's RuntimeDirectory=, which systemd creates at start and removes
at stop, relative to /run or $XDG_RUNTIME_DIR — systemd.exec(5), "RuntimeDirectory=")
"""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_UNIT_DIR = "/etc/systemd/system"  # systemd.unit(5): local configuration, system manager
SYSTEM_ENV_DIR = "/etc/llmctl"  # render's default --env-dir
SYSTEM_RUNTIME_DIR = "/run"
COLOURS = ("blue", "green")


def user_unit_dir() -> Path:
    # systemd.unit(5): user units in $XDG_CONFIG_HOME/systemd/user (default ~/.config/systemd/user)
    return _config_home() / "systemd" / "user"


def _config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config"))


def unit_dir(user: bool) -> Path:
    return user_unit_dir() if user else Path(SYSTEM_UNIT_DIR)


def config_dir(user: bool) -> Path:
    """Env files and the proxy's configuration."""
    return _config_home() / "llmctl" if user else Path(SYSTEM_ENV_DIR)


def runtime_root(user: bool) -> Path:
    if not user:
        return Path(SYSTEM_RUNTIME_DIR)
    return Path(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}")


def state_root(user: bool) -> str:
    """What StateDirectory= is relative to: /var/lib, or $XDG_STATE_HOME (~/.local/state) for --user."""
    if not user:
        return "/var/lib"
    return os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")


def engine_unit(slug: str, colour: str) -> str:
    return f"{slug}-{colour}.service"


def proxy_unit(slug: str) -> str:
    return f"{slug}-proxy.service"


def proxy_config(slug: str) -> str:
    return f"{slug}-proxy.cfg"


def env_file(slug: str, colour: str) -> str:
    return f"{slug}-{colour}.env"


def proxy_runtime_dir(slug: str) -> str:
    """The proxy unit's RuntimeDirectory= (relative)."""
    return f"llmctl/{slug}-proxy"


def proxy_socket(slug: str, user: bool) -> Path:
    return runtime_root(user) / proxy_runtime_dir(slug) / "admin.sock"
