"""The CS236 Homework 2 VAE: MLP encoder 784-300-300-2z, decoder z-300-300-784, ELU, z_dim 10."""
import torch
from torch import nn
from torch.nn import functional as F

from impls.bounds import negative_elbo_bound, negative_iwae_bound
from impls.gaussian import sample_gaussian


class Encoder(nn.Module):
    """x -> (m, v) of q(z|x) with v = softplus(h) + 1e-8."""

    def __init__(self, z_dim=10, x_dim=784, hidden=300):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(x_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, 2 * z_dim)
        )

    def forward(self, x):
        m, h = self.net(x).chunk(2, dim=-1)
        return m, F.softplus(h) + 1e-8

    encode = forward


class Decoder(nn.Module):
    """z -> Bernoulli logits of p(x|z); accepts any leading batch dims."""

    def __init__(self, z_dim=10, x_dim=784, hidden=300):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, x_dim)
        )

    def forward(self, z):
        return self.net(z)

    decode = forward


class VAE(nn.Module):
    """VAE with prior N(0, I) and Bernoulli pixels, in the shape of the CS236 starter code."""

    def __init__(self, z_dim=10, x_dim=784, hidden=300):
        super().__init__()
        self.z_dim = z_dim
        self.enc = Encoder(z_dim, x_dim, hidden)
        self.dec = Decoder(z_dim, x_dim, hidden)
        self.z_prior_m = nn.Parameter(torch.zeros(1), requires_grad=False)
        self.z_prior_v = nn.Parameter(torch.ones(1), requires_grad=False)

    def negative_elbo_bound(self, x):
        return negative_elbo_bound(x, self.enc, self.dec)

    def negative_iwae_bound(self, x, iw):
        return negative_iwae_bound(x, self.enc, self.dec, iw)

    def sample_z(self, n):
        m = self.z_prior_m.expand(n, self.z_dim)
        return sample_gaussian(m, self.z_prior_v.expand(n, self.z_dim))

    def sample_x(self, n):
        """Binary images from the model: z ~ p(z), x ~ Bernoulli(sigmoid(dec(z)))."""
        return torch.bernoulli(torch.sigmoid(self.dec(self.sample_z(n))))
