"""mialaw.empirical: membership inference against real fine-tuned classifiers."""
