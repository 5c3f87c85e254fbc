"""What the two lines share and the printed line's parts; the lines themselves are ``station.engine.LineEngine``
(printed stamps) and ``station.preprinted.PreprintedLine`` (pre-printed stamps).

- ``loop``: the loop both run (inbox, commands, group-commit timing, a thread or begin/step/finish),
- ``events``: the line's state, the events it announces, its run summary and the station's identity,
- ``flood``: a verifier sending far more reads than the line has items,
- ``window``: the stamps in flight and the rules that match a read to one (pure),
- ``serial_pool``: serials reserved in blocks, given back as unused,
- ``commits``: the printed line's decisions on their way to the database,
- ``stamp_events``: the label's fields and the EPCIS events of both lines.
"""
