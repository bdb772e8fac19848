"""The answer key: reference implementations of the submission contract (docs/CONTRACT.md).

Each formula lives in one small function whose docstring gives the math:

- ``gaussian``:  sample_gaussian, log_normal, log_normal_mixture, kl_normal; LOG_2PI,
  log_standard_normal and reparameterize, which the rest of the project imports
- ``bernoulli``: log_bernoulli_with_logits
- ``reductions``: log_mean_exp
- ``bounds``:    negative_elbo_bound, negative_iwae_bound (chunked over the samples); their terms
  (elbo_terms, kl_per_dimension, iwae_log_weights), shared with training/ and benchmarks/fused.py
- ``vae``:       the CS236 VAE (MLP encoder / decoder) built on the functions above
- ``gmvae``:     the GMVAE (mixture-of-Gaussians prior): its negative ELBO and IWAE bound, the class
- ``ssvae``:     the SSVAE (label marginalised by enumeration): its negative ELBO, the classifier's
  cross-entropy, the class and its conditional networks
"""
from impls.bernoulli import log_bernoulli_with_logits
from impls.bounds import negative_elbo_bound, negative_iwae_bound
from impls.gaussian import kl_normal, log_normal, log_normal_mixture, sample_gaussian
from impls.gmvae import gmvae_negative_elbo_bound, gmvae_negative_iwae_bound
from impls.reductions import log_mean_exp
from impls.ssvae import ssvae_negative_elbo_bound
