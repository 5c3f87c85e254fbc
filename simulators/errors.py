"""Exception root of the simulators."""


class SimulatorError(Exception):
    """Root of every error a simulator raises on purpose."""
