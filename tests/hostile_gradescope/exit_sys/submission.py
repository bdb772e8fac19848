"""Hostile: ends the process at import with exit status 0."""
import sys

sys.exit(0)


def kl_normal(qm, qv, pm, pv):
    return 0
