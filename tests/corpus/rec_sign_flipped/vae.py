class VAE(VAE):
    def negative_elbo_bound(self, x):
        mu, var = self.enc.encode(x)
        z = ut.sample_gaussian(mu, var)
        rec = ut.log_bernoulli_with_logits(x, self.dec.decode(z)).mean()  # the log-likelihood, not its negative
        kl = ut.kl_normal(mu, var, self.z_prior_m, self.z_prior_v).mean()
        nelbo = kl - rec
        return nelbo, kl, rec
