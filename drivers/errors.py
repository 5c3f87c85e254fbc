"""Exception root of the device layer."""


class DeviceError(Exception):
    """Root of every error a driver raises on purpose."""
