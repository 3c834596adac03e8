"""The compose target: a compose project per colour behind the HAProxy traffic layer.

render.py writes compose.yaml (and the env file's example); apply.py runs `docker compose` for
up/down/status/logs; checks.py is what doctor asks of the host; templates/ holds the Jinja files.
"""
