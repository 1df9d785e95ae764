"""WeCom edge tests."""
