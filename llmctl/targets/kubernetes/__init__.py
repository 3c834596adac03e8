"""The kubernetes target: Deployment (or LeaderWorkerSet across nodes), Service, PVC, autoscaler,
PodMonitor and a Gateway API HTTPRoute for blue/green shares.

render.py writes the manifests (fit.py: which nodes a replica fits on; gpu_labels.py: GPU feature
discovery's product label); apply.py drives kubectl; checks.py is what doctor asks of the cluster;
templates/ holds the Jinja files.
"""
