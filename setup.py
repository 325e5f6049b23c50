"""Kept for editable installs with older pip; metadata lives in setup.cfg."""
from setuptools import setup

setup()
