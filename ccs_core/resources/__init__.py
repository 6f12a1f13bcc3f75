"""Bundled data files (pool.txt) and the script that writes them."""
