"""Hypothesis strategies for NVMe-oF RDMA options, topologies, commands, SGLs and faults."""
