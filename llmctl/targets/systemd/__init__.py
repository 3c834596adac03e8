"""The systemd target: one unit running the engine in docker/podman or natively.

render.py writes the unit; apply.py installs, starts and stops it with systemctl; checks.py is what
doctor asks of the host; templates/ holds the Jinja file.
"""
