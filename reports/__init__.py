"""Reporting for nvmf-rdma-conformance: property catalogue, Allure metadata, attachments,
the pytest plugin that labels tests by property, the release sign-off summary and HTML."""
