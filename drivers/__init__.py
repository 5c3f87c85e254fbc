"""Devices: transports chosen by URL, the Zebra printer, scanners and the MQTT client. No batches, no stamps."""
