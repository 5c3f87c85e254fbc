"""Zebra label printers: a pure ZPL builder, a pure status parser, and the printer that joins them to a transport."""
