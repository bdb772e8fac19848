class VAE(VAE):
    def negative_iwae_bound(self, x, iw):
        m, v = self.enc.encode(x)
        m_rep, v_rep, x_rep = ut.duplicate(m, iw), ut.duplicate(v, iw), ut.duplicate(x, iw)
        z = ut.sample_gaussian(m_rep, v_rep)
        log_ratio = (ut.log_bernoulli_with_logits(x_rep, self.dec.decode(z))
                     + ut.log_normal(z, self.z_prior_m, self.z_prior_v) - ut.log_normal(z, m_rep, v_rep))
        niwae = -ut.log_mean_exp(log_ratio.reshape(iw, -1), 0).mean()
        # rec and kl reported as in the ELBO: one extra reparameterized sample
        z_one = ut.sample_gaussian(m, v)
        rec = -ut.log_bernoulli_with_logits(x, self.dec.decode(z_one)).mean()
        kl = ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        return niwae, kl, rec
