"""Written answers with two classic mistakes: the log term of the KL dropped, and the Jacobian
factor counted twice in the affine-flow density (the "(2/3) N(3, 1.5)" answer)."""

KL_GAUSSIAN = "(sigma**2 + mu**2 - 1)/2"  # mistake: no -log(sigma)
AFFINE_FLOW_DENSITY = "(2/3) * exp(-(x - 3)**2/(2*1.5**2)) / sqrt(2*pi*1.5**2)"  # mistake: 2/3 applied twice
COUPLING_LOG_DET = "s1 + s2"
