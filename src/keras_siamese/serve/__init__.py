"""The HTTP service and its web page (needs the `serve` extra: pip install 'keras-siamese[serve]')."""
