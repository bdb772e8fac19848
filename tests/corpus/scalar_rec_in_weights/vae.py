class VAE(VAE):
    def negative_iwae_bound(self, x, iw):
        qm, qv = self.enc.encode(x)
        qm_k, qv_k = qm.expand(iw, -1, -1), qv.expand(iw, -1, -1)
        z = ut.sample_gaussian(qm_k, qv_k)
        rec = -ut.log_bernoulli_with_logits(x.expand(iw, -1, -1), self.dec.decode(z)).mean()
        log_w = -rec + ut.log_normal(z, self.z_prior_m, self.z_prior_v) - ut.log_normal(z, qm_k, qv_k)
        niwae = -ut.log_mean_exp(log_w, 0).mean()
        kl = ut.kl_normal(qm, qv, self.z_prior_m, self.z_prior_v).mean()
        return niwae, kl, rec
