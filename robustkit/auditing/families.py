"""The names of the threat families a defense audit adds: light, for the checks and the report,
which read saved results (the families' behaviour is in auditing/threats.py and
defenses/evaluation.py)."""

OBLIVIOUS = "oblivious"
FAMILIES = (OBLIVIOUS, "bpda", "bpda-eot")  # how a defense audit reaches the defended model
LATENT = "latent"  # the family of attacks in a generator's latent space
