"""Written answers next to a CS236-layout checkout: two answered, the coupling left out."""

KL_GAUSSIAN = r"\frac{\sigma^2 + \mu^2 - 1}{2} - \log\sigma"
AFFINE_FLOW_DENSITY = "exp(-2*(x - 3)**2/9) * sqrt(2) / (3*sqrt(pi))"
