class VAE(VAE):
    def negative_iwae_bound(self, x, iw):
        m, v = self.enc.encode(x)
        x_dup, m_dup, v_dup = ut.duplicate(x, iw), ut.duplicate(m, iw), ut.duplicate(v, iw)
        z = ut.sample_gaussian(m_dup, v_dup)
        rec_all = ut.log_bernoulli_with_logits(x_dup, self.dec.decode(z))
        log_weights = rec_all + ut.log_normal(z, self.z_prior_m, self.z_prior_v) - ut.log_normal(z, m_dup, v_dup)
        niwae = -ut.log_mean_exp(log_weights.view(-1, iw), 1).mean()  # groups of iw consecutive rows
        kl = ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        return niwae, kl, -rec_all.mean()
