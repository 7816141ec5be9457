"""The SPDK target: SPDK's lib/nvmf/rdma.c from a user's tree, built onto simverbs."""
