import torch.nn.functional as F


class VAE(VAE):
    def negative_elbo_bound(self, x):
        mean, variance = self.enc.encode(x)
        logits = self.dec.decode(ut.sample_gaussian(mean, variance))
        kl = ut.kl_normal(mean, variance, self.z_prior_m, self.z_prior_v).sum()  # summed over the batch
        rec = F.binary_cross_entropy_with_logits(logits, x)  # averaged over the pixels too
        return kl + rec, kl, rec
