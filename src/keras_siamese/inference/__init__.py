"""Inference: loading models, embedding images, comparing pairs."""
