"""Build hook: cffi_modules cannot be declared in pyproject.toml; all metadata lives there."""

from setuptools import setup

setup(cffi_modules=["impl/_build.py:ffibuilder"])
