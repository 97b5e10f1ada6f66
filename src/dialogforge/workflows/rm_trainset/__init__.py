"""`annotate rm-trainset`: the reward model's training set from human-labelled reward items."""
