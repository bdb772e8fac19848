"""Correct-but-different written answers for the single-file variants in this folder (read as text by
the grader, never run): each equivalent to the derived closed form in another spelling."""

KL_GAUSSIAN = "-(1/2)*(1 + log(sigma**2) - mu**2 - sigma**2)"
AFFINE_FLOW_DENSITY = "exp(-((x - 3)/1.5)**2/2) / (1.5*sqrt(2*pi))"
COUPLING_LOG_DET = "log(exp(s1)*exp(s2))"
