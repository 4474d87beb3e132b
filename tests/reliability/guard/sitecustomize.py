# Put on PYTHONPATH by tests/reliability/conftest.py: every Python process the suite
# starts (job drivers, Ray workers, Python servers) refuses connections beyond loopback
# and records them in the log named by SMARTRAY_NET_GUARD (netguard.py, beside this file).
import os

if os.environ.get("SMARTRAY_NET_GUARD"):
    import netguard

    netguard.install()
