"""The contracts the station and the central service share: MQTT topics, EPCIS documents, Digital Links.

Pure code, no I/O beyond reading the packaged schema: both deployables import it, neither imports the other.
"""
