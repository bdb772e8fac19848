"""The CS236 SSVAE (M2 of Kingma et al., 2014): a semi-supervised VAE with a discrete label y.

    p(y) = uniform over Y classes,  p(z) = N(0, I),  p(x | y, z) Bernoulli(sigmoid(dec(z, y)))
    q(y | x) = softmax(cls(x)),     q(z | x, y) = N(m(x, y), diag v(x, y))

On unlabelled x the ELBO marginalises y by enumeration:

    -ELBO(x) = KL(q(y|x) || p(y)) + sum_y q(y|x) [ KL(q(z|x,y) || p(z)) - E_q(z|x,y) log p(x|y,z) ]
"""
import math

import torch
from torch import nn
from torch.nn import functional as F

from impls.bernoulli import log_bernoulli_with_logits
from impls.bounds import kl_per_dimension
from impls.gaussian import sample_gaussian


def kl_categorical_uniform(log_q):
    """KL(q || uniform) = sum_y q_y (log q_y + log Y) for log-probabilities ``log_q`` (..., Y); shape (...).
    Written with q = exp(log q), so a class of probability 0 adds 0 (not 0 * -inf)."""
    return (log_q.exp() * (log_q + math.log(log_q.shape[-1]))).sum(-1)


def ssvae_negative_elbo_bound(x, encoder, decoder, classifier, sample=sample_gaussian):
    """-ELBO of unlabelled ``x`` (B, X) with y enumerated; batch means ``(nelbo, kl_z, kl_y, rec)``:

        kl_y_b = KL(q(y | x_b) || uniform)
        kl_z_b = sum_y q(y | x_b) KL(q(z | x_b, y) || N(0, I))        (analytic)
        rec_b  = sum_y q(y | x_b) (-log p(x_b | y, z_by)),  z_by ~ q(z | x_b, y), one sample per (b, y)
        nelbo  = kl_y + kl_z + rec

    ``classifier(x)`` gives the logits of q(y|x) (B, Y); ``encoder(x, y)`` the (m, v) of q(z|x, y)
    and ``decoder(z, y)`` the logits of p(x|y, z), with y one-hot. The Y labels are enumerated as
    one batch of Y * B rows, label-major (rows y B ... y B + B - 1 hold label y).
    """
    log_q_y = F.log_softmax(classifier(x), dim=-1)  # (B, Y)
    batch, classes = log_q_y.shape
    y = torch.eye(classes, dtype=x.dtype, device=x.device).repeat_interleave(batch, 0)  # (Y B, Y)
    xs = x.repeat(classes, *([1] * (x.dim() - 1)))  # (Y B, X)
    m, v = encoder(xs, y)
    z = sample(m, v)
    kl_z = kl_per_dimension(m, v).sum(-1).reshape(classes, batch)  # (Y, B)
    rec = -log_bernoulli_with_logits(xs, decoder(z, y)).reshape(classes, batch)
    q_y = log_q_y.exp().t()  # (Y, B)
    kl_y = kl_categorical_uniform(log_q_y).mean()
    kl_z, rec = (q_y * kl_z).sum(0).mean(), (q_y * rec).sum(0).mean()
    return kl_y + kl_z + rec, kl_z, kl_y, rec


def classification_cross_entropy(classifier, x, y):
    """-mean_b log q(y_b | x_b) for labels ``y`` given as class indices (B,) or one-hot rows (B, Y)."""
    if y.dim() > 1:
        y = y.argmax(-1)
    return F.cross_entropy(classifier(x), y)


class ConditionalEncoder(nn.Module):
    """(x, y) -> (m, v) of q(z | x, y): an MLP on [x, y], v = softplus(h) + 1e-8."""

    def __init__(self, z_dim=64, y_dim=10, x_dim=784, hidden=300):
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(nn.Linear(x_dim + y_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, 2 * z_dim))

    def forward(self, x, y):
        m, h = self.net(torch.cat([x, y], -1)).chunk(2, dim=-1)
        return m, F.softplus(h) + 1e-8

    encode = forward


class ConditionalDecoder(nn.Module):
    """(z, y) -> Bernoulli logits of p(x | y, z): an MLP on [z, y]."""

    def __init__(self, z_dim=64, y_dim=10, x_dim=784, hidden=300):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim + y_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                 nn.Linear(hidden, x_dim))

    def forward(self, z, y):
        return self.net(torch.cat([z, y], -1))

    decode = forward


class Classifier(nn.Module):
    """x -> logits of q(y | x): an MLP 784-300-300-Y with ReLU."""

    def __init__(self, y_dim=10, x_dim=784, hidden=300):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, y_dim))

    def forward(self, x):
        return self.net(x)

    classify = forward


class SSVAE(nn.Module):
    """The CS236 SSVAE (z_dim 64, 10 classes) in the shape of the starter: ``enc``, ``dec``, ``cls``,
    and the training loss ``gen_weight * nelbo(x) + class_weight * cross_entropy(xl, yl)``."""

    def __init__(self, gen_weight=1.0, class_weight=100.0, z_dim=64, y_dim=10, x_dim=784, hidden=300):
        super().__init__()
        self.z_dim, self.y_dim = z_dim, y_dim
        self.gen_weight, self.class_weight = gen_weight, class_weight
        self.enc = ConditionalEncoder(z_dim, y_dim, x_dim, hidden)
        self.dec = ConditionalDecoder(z_dim, y_dim, x_dim, hidden)
        self.cls = Classifier(y_dim, x_dim, hidden)

    def negative_elbo_bound(self, x):
        return ssvae_negative_elbo_bound(x, self.enc, self.dec, self.cls)

    def classification_cross_entropy(self, x, y):
        return classification_cross_entropy(self.cls, x, y)

    def loss(self, x, xl, yl):
        """The training objective on unlabelled ``x`` and labelled ``(xl, yl)``: returns ``(loss, summaries)``.
        With ``gen_weight`` 0 the ELBO is not computed (the classifier alone is trained)."""
        ce = self.classification_cross_entropy(xl, yl)
        summaries = {"ce": ce}
        loss = self.class_weight * ce
        if self.gen_weight > 0:
            nelbo, kl_z, kl_y, rec = self.negative_elbo_bound(x)
            loss = loss + self.gen_weight * nelbo
            summaries.update(nelbo=nelbo, kl_z=kl_z, kl_y=kl_y, rec=rec)
        return loss, summaries

    def sample_x_given(self, y):
        """Images for one-hot labels ``y`` (n, Y): z ~ N(0, I), x ~ Bernoulli(sigmoid(dec(z, y)))."""
        z = torch.randn(y.shape[0], self.z_dim, dtype=y.dtype, device=y.device)
        return torch.bernoulli(torch.sigmoid(self.dec(z, y)))
