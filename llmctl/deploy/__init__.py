"""`llmctl up` / `down` / `status`: apply a plan to a target, wait for it, smoke-test it, remember it.

state.py     what was applied (`.llmctl/<slug>/state.json` beside the spec)
secrets.py   the env file (mode 0600) built from the user's environment
preflight.py doctor's checks before anything starts
progress.py  waiting with a deadline and a progress line
compose.py   Docker Compose (`docker compose` + the Docker engine API for inspection)
local.py     the engine as a supervised child process (pid file + log file)
systemd.py   a systemd unit (system or --user)
kubernetes.py `kubectl apply --server-side`, rollout status, port-forward
rollout.py   first start, blue/green updates, idempotence, down and status across targets
"""
