"""mialaw.simulate: Monte Carlo of the membership game."""
