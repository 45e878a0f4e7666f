"""Domains: one module of handwritten SQL per job, all over the same client."""
