"""Fuzz targets (Atheris); see fuzz_config_loader.py and the Makefile's fuzz targets."""
