from setuptools import setup

# Beam stages worker dependencies with `--setup_file ./setup.py`; the metadata lives in pyproject.toml.
setup()
