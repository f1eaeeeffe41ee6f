"""Simulated e-CNY acquiring bank: ``bank`` holds the provider hooks and the endpoints,
``protocol`` the bank's own SM2/SM3 signing and envelope format."""

from payments.sandbox.ecny.bank import ECNYSandbox

__all__ = ["ECNYSandbox"]
