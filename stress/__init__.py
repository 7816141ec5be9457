"""Nightly-scale stress: the conformance machines at scale, the C soak driver, hardware."""
