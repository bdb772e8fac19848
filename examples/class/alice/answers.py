"""Written answers (read as text by the grader, never run): all correct, in different forms."""

# Q1a: KL(N(mu, sigma^2) || N(0, 1))
KL_GAUSSIAN = "0.5*(sigma**2 + mu**2 - 1 - log(sigma**2))"

# Q3a: the density of x = 1.5 z + 3, z ~ N(0, 1), in LaTeX
AFFINE_FLOW_DENSITY = r"\frac{1}{1.5\sqrt{2\pi}} \exp\left(-\frac{(x-3)^2}{2 \cdot 1.5^2}\right)"

# Q3c: log|det dy/dx| of the coupling layer (2 + 2 split)
COUPLING_LOG_DET = (
    "s1"
    " + s2"
)
