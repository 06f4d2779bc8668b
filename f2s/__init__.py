"""f2s: face photo -> pencil sketch with DAE, VAE and CASQ in JAX/Flax."""
