"""Devices that speak the real wire protocols, with fault injection, for tests, demos and testers."""
