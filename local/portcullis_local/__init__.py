"""Portcullis' local AWS stack.

Everything here exists only to run Portcullis on one machine without an AWS account: an in-process
moto emulator with a few documented fidelity patches, a bootstrap of the resources the product
expects to find, an API Gateway stand-in that routes as ``openapi.yaml`` says, and the launcher that
ties them to ``cargo lambda watch``.  None of it ships with the product.
"""
