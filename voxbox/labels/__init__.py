"""Labels you can trust without native ones: embedding classifiers (gender, age,
emotion) and how they are trained, speaker clustering and votes, duplicates."""
