def log_normal(x, m, v):
    # sign slip on the log-variance term
    return (-0.5 * math.log(2 * math.pi) + 0.5 * torch.log(v) - (x - m) ** 2 / (2 * v)).sum(-1)
