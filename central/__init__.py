"""The central traceability service: ingest of the stations' EPCIS events, the trace page, the reports."""
