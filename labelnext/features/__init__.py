"""Label-free and pretrained encoders that turn items into feature vectors, cached by content."""
