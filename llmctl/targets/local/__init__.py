"""The local target: the engine's own binary as a process on this host, behind the HAProxy traffic
layer. Nothing to render; apply.py starts, watches and stops the process; checks.py is what doctor
asks of the host.
"""
