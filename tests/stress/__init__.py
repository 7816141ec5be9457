"""Tests of the nightly-scale stress tools: the C soak driver."""
