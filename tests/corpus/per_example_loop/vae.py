import torch


class VAE(VAE):
    # one example at a time, calling the networks once per example; float32 constants

    def negative_elbo_bound(self, x):
        kls, recs = [], []
        for i in range(x.shape[0]):
            xi = x[i:i + 1]
            m, v = self.enc.encode(xi)
            logits = self.dec.decode(ut.sample_gaussian(m, v))
            kls.append(ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v))
            recs.append(-ut.log_bernoulli_with_logits(xi, logits))
        kl, rec = torch.cat(kls).mean(), torch.cat(recs).mean()
        return kl + rec, kl, rec

    def negative_iwae_bound(self, x, iw):
        bounds, kls, recs = [], [], []
        log_iw = torch.log(torch.tensor(float(iw)))
        for i in range(x.shape[0]):
            xi = x[i]
            m, v = self.enc.encode(xi.unsqueeze(0))
            z = ut.sample_gaussian(m.repeat(iw, 1), v.repeat(iw, 1))
            log_px = ut.log_bernoulli_with_logits(xi.expand(iw, -1), self.dec.decode(z))
            w = log_px + ut.log_normal(z, self.z_prior_m, self.z_prior_v) - ut.log_normal(z, m, v)
            bounds.append(torch.logsumexp(w, 0) - log_iw)
            kls.append(ut.kl_normal(m, v, self.z_prior_m, self.z_prior_v)[0])
            recs.append(-log_px.mean())
        return -torch.stack(bounds).mean(), torch.stack(kls).mean(), torch.stack(recs).mean()
