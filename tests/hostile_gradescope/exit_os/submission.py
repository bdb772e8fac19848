"""Hostile: ends the grading worker at import with exit status 0, past every exception handler."""
import os

os._exit(0)


def kl_normal(qm, qv, pm, pv):
    return 0
