"""Correct-but-different written answers (LaTeX) next to a CS236-layout checkout."""

KL_GAUSSIAN = r"\frac{1}{2}\left(\sigma^2 + \mu^2 - 1 - \log \sigma^2\right)"
AFFINE_FLOW_DENSITY = r"\frac{2}{3\sqrt{2\pi}} e^{-\frac{2 (x - 3)^2}{9}}"
COUPLING_LOG_DET = r"s_1 + s_2"
