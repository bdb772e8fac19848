"""Training and evaluation on MNIST with the reference implementations (``python -m training.train``)."""
