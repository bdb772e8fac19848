"""Written answers: the KL and the density right, the coupling's determinant given without its log."""

KL_GAUSSIAN = r"$\frac{1}{2}\left(\sigma^{2} + \mu^{2} - 1\right) - \ln \sigma$"
AFFINE_FLOW_DENSITY = "exp(-(x - 3)**2 / 4.5) / sqrt(4.5*pi)"
COUPLING_LOG_DET = "exp(s1 + s2)"  # mistake: the determinant, not its log
