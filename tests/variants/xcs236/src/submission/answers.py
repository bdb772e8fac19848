"""Correct-but-different written answers in the XCS236 layout (src/submission/answers.py)."""

KL_GAUSSIAN = "mu**2/2 + sigma**2/2 - 1/2 - log(sigma)"
AFFINE_FLOW_DENSITY = "sqrt(2)*exp(-2*(x - 3)**2/9)/(3*sqrt(pi))"
COUPLING_LOG_DET = "s2 + s1"
