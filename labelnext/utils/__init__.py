"""Small shared pieces: argument checks and their one-line messages, defaults, seeding, console helpers."""
