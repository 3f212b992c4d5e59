"""The framework-free core: certificates, identity, sources, verification, policy, the pipeline.

Nothing under ``hookshield.core`` imports Django (a test enforces it).
"""
