"""Planted bugs in the flows side of the contract: ``affine_flow_log_prob`` and ``AffineCoupling``.

Each is the reference (impls/flows.py) with one bug. A buggy ``AffineCoupling`` is a subclass of
the reference that overrides the one method holding the bug; its class name is the bug's name.
"""
import torch

from impls.flows import AffineCoupling
from impls.gaussian import LOG_2PI
from grader.catalogue.registry import bug

# ------------------------------------------------------------------------ affine_flow_log_prob


@bug("affine_flow_log_prob",
     "dropping the Jacobian term: log N((x - b)/a; 0, 1) without - log|a| integrates to |a|, not 1")
def affine_flow_no_jacobian(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * (LOG_2PI + z**2)


@bug("affine_flow_log_prob", "adding log|a| instead of subtracting it: the density integrates to a^2, not 1")
def affine_flow_jacobian_sign_flipped(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * (LOG_2PI + z**2) + torch.log(torch.abs(scale))


@bug("affine_flow_log_prob",
     "pushing x forward through the map (z = a x + b) instead of inverting it (z = (x - b)/a)")
def affine_flow_direction_inverted(x, scale, shift):
    z = scale * x + shift
    return -0.5 * (LOG_2PI + z**2) - torch.log(torch.abs(scale))


@bug("affine_flow_log_prob",
     "counting the Jacobian twice, the '(2/3) N(3, 1.5)' answer: N(b, a^2) already holds 1/|a|, "
     "so the result integrates to 1/|a|")
def affine_flow_jacobian_twice(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * (LOG_2PI + z**2) - 2 * torch.log(torch.abs(scale))


@bug("affine_flow_log_prob", "taking log(a) instead of log|a|: a negative scale gives NaN, yet it is a valid flow")
def affine_flow_log_of_signed_scale(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * (LOG_2PI + z**2) - torch.log(scale)


@bug("affine_flow_log_prob", "treating the scale a as a variance: x = a z + b has variance a^2, not a")
def affine_flow_scale_as_variance(x, scale, shift):
    v = torch.abs(scale)
    return -0.5 * (LOG_2PI + torch.log(v) + (x - shift) ** 2 / v)


# ------------------------------------------------------------------------------ AffineCoupling


def _mask_scale_shift(layer, v):
    """(mask, s, t) for the input ``v`` as the reference computes them: the networks see ``mask * v``."""
    mask = layer._mask(v)
    return (mask, *layer.scale_shift(mask * v))


@bug("AffineCoupling", "summing s over every feature: the pass-through features (mask = 1) add nothing to log|det|, "
     "so log_det must be masked by (1 - mask)")
class coupling_log_det_not_masked(AffineCoupling):
    def log_det(self, s, mask):
        return s.flatten(1).sum(1)


@bug("AffineCoupling", "returning -sum(s), the log-determinant of the inverse map, instead of log|det dy/dx| = +sum(s)")
class coupling_log_det_sign_flipped(AffineCoupling):
    def log_det(self, s, mask):
        return -((1 - mask) * s).flatten(1).sum(1)


@bug("AffineCoupling", "averaging s over the features: the log of a product of diagonal entries is a sum, not a mean")
class coupling_log_det_mean(AffineCoupling):
    def log_det(self, s, mask):
        return ((1 - mask) * s).flatten(1).mean(1)


@bug("AffineCoupling", "summing exp(s), the diagonal entries, instead of their logs s")
class coupling_log_det_exp_s(AffineCoupling):
    def log_det(self, s, mask):
        return ((1 - mask) * torch.exp(s)).flatten(1).sum(1)


@bug("AffineCoupling", "summing log_det over the batch too: it must be one value per example, shape (B,)")
class coupling_log_det_summed_over_batch(AffineCoupling):
    def log_det(self, s, mask):
        return ((1 - mask) * s).sum()


@bug("AffineCoupling", "feeding the scale and shift networks the whole input x instead of mask * x: s and t then "
     "depend on the features they transform, the Jacobian is no longer triangular and the layer cannot be inverted")
class coupling_nets_see_unmasked_input(AffineCoupling):
    def forward(self, x):
        mask = self._mask(x)
        s, t = self.scale_shift(x)
        y = mask * x + (1 - mask) * (x * torch.exp(s) + t)
        return y, self.log_det(s, mask)

    def inverse(self, y):
        mask = self._mask(y)
        s, t = self.scale_shift(y)
        return mask * y + (1 - mask) * (y - t) * torch.exp(-s)


@bug("AffineCoupling", "transforming the masked features (mask = 1) instead of the others: the features the networks "
     "read are then changed, so the Jacobian is not triangular and the inverse cannot recover them")
class coupling_transforms_masked_half(AffineCoupling):
    def forward(self, x):
        mask, s, t = _mask_scale_shift(self, x)
        y = (1 - mask) * x + mask * (x * torch.exp(s) + t)
        return y, (mask * s).flatten(1).sum(1)

    def inverse(self, y):
        mask, s, t = _mask_scale_shift(self, y)
        return (1 - mask) * y + mask * (y - t) * torch.exp(-s)


@bug("AffineCoupling", "inverting with exp(+s): undoing a multiplication by exp(s) needs exp(-s)")
class coupling_inverse_exp_plus_s(AffineCoupling):
    def inverse(self, y):
        mask, s, t = _mask_scale_shift(self, y)
        return mask * y + (1 - mask) * (y - t) * torch.exp(s)


@bug("AffineCoupling", "subtracting t after undoing the scale: the inverse of y = x exp(s) + t is (y - t) exp(-s), "
     "not y exp(-s) - t")
class coupling_inverse_shift_after_scale(AffineCoupling):
    def inverse(self, y):
        mask, s, t = _mask_scale_shift(self, y)
        return mask * y + (1 - mask) * (y * torch.exp(-s) - t)


@bug("AffineCoupling", "computing s and t in the inverse from y instead of mask * y: the networks must see exactly "
     "what they saw in forward, the pass-through features")
class coupling_inverse_nets_see_unmasked_y(AffineCoupling):
    inverse = coupling_nets_see_unmasked_input.inverse  # that bug's inverse, with the reference's forward


# ------------------------------------------------------------------ gradient-only bugs: right value, wrong gradient


@bug("affine_flow_log_prob", "taking log|a| with math/numpy on a detached scale: right value, but the gradient with "
     "respect to the scale misses the Jacobian term")
def affine_flow_log_scale_detached(x, scale, shift):
    z = (x - shift) / scale
    return -0.5 * (LOG_2PI + z**2) - torch.log(torch.abs(scale)).detach()


@bug("AffineCoupling", "detaching s (the scale network's output): right values, but the scale network gets no "
     "gradient, so it never trains")
class coupling_s_detached(AffineCoupling):
    def scale_shift(self, x_pass):
        return self.scale_net(x_pass).detach(), self.shift_net(x_pass)


@bug("AffineCoupling", "detaching t (the shift network's output): right values, but the shift network gets no "
     "gradient, so it never trains")
class coupling_t_detached(AffineCoupling):
    def scale_shift(self, x_pass):
        return self.scale_net(x_pass), self.shift_net(x_pass).detach()


@bug("AffineCoupling", "transforming x in place (x.mul_(exp(s)).add_(t)): y is right, but the caller's x is changed")
class coupling_transforms_input_in_place(AffineCoupling):
    def forward(self, x):
        mask, s, t = _mask_scale_shift(self, x)
        if x.requires_grad:
            return super().forward(x)
        y = x.mul_(torch.where(mask.bool(), torch.ones_like(s), torch.exp(s))).add_((1 - mask) * t)
        return y, self.log_det(s, mask)


@bug("AffineCoupling", "clamping s to [-10, 10]: the same for ordinary scales, wrong once the scale network's s leaves "
     "that range (the contract's s is any real)")
class coupling_s_clamped(AffineCoupling):
    def scale_shift(self, x_pass):
        return self.scale_net(x_pass).clamp(-10, 10), self.shift_net(x_pass)
