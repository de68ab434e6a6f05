"""mialaw.theory: the simplified Gaussian membership model, its exact theory and the attack metrics.

Pure mathematics, no randomness. sympy is imported lazily (``mialaw.theory.derivation``).
"""
