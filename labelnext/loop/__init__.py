"""The labeling loop: a project folder, its SQLite label store and the round."""
