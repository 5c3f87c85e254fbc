"""The operator's words that several widgets share: line states (and their colours), void reasons, printer
faults, delivery and roll states, the counters' and the rolls' headings. Each is marked for translation where it
is written (QT_TRANSLATE_NOOP, context "Words" or "OperatorScreen") and translated where it is shown.
"""

from __future__ import annotations

from station.alarms import Alarm
from station.domain import DeliveryState, RollState
from station.engine import LineState
from ui.qt import QT_TRANSLATE_NOOP, QCoreApplication


STATE_WORDS = {
    LineState.RUNNING: QT_TRANSLATE_NOOP("Words", "RUNNING"),
    LineState.PAUSED: QT_TRANSLATE_NOOP("Words", "PAUSED"),
    LineState.STOPPED: QT_TRANSLATE_NOOP("Words", "STOPPED"),
    LineState.FAULT: QT_TRANSLATE_NOOP("Words", "FAULT"),
    LineState.STOPPING: QT_TRANSLATE_NOOP("Words", "STOPPING…"),
}
STATE_COLOURS = {
    LineState.RUNNING: ("#1b7f3b", "#ffffff"),
    LineState.PAUSED: ("#e0a100", "#000000"),
    LineState.STOPPED: ("#5c6670", "#ffffff"),
    LineState.FAULT: ("#c62828", "#ffffff"),
    LineState.STOPPING: ("#8d6e00", "#ffffff"),
}
VOID_WORDS = {
    "no_read": QT_TRANSLATE_NOOP("Words", "not read"),
    "wrong_content": QT_TRANSLATE_NOOP("Words", "wrong content"),
    "unreadable": QT_TRANSLATE_NOOP("Words", "unreadable"),
    "printer_fault": QT_TRANSLATE_NOOP("Words", "printer fault"),
    "line_stopped": QT_TRANSLATE_NOOP("Words", "line stopped"),
    "operator": QT_TRANSLATE_NOOP("Words", "by hand"),
    "unused": QT_TRANSLATE_NOOP("Words", "never printed"),
    "batch_locked": QT_TRANSLATE_NOOP("Words", "batch locked"),
}
FAULT_WORDS = {
    "paper_out": QT_TRANSLATE_NOOP("Words", "out of labels"),
    "ribbon_out": QT_TRANSLATE_NOOP("Words", "ribbon out"),
    "head_open": QT_TRANSLATE_NOOP("Words", "head open"),
    "paused": QT_TRANSLATE_NOOP("Words", "paused on the printer"),
    "cutter": QT_TRANSLATE_NOOP("Words", "cutter fault"),
    "over_temperature": QT_TRANSLATE_NOOP("Words", "too hot"),
    "under_temperature": QT_TRANSLATE_NOOP("Words", "too cold"),
    "buffer_full": QT_TRANSLATE_NOOP("Words", "buffer full"),
}
DELIVERY_WORDS = {
    DeliveryState.PENDING: QT_TRANSLATE_NOOP("Words", "waiting to be sent"),
    DeliveryState.SENT: QT_TRANSLATE_NOOP("Words", "sent, not yet confirmed"),
    DeliveryState.CONFIRMED: QT_TRANSLATE_NOOP("Words", "confirmed by the server"),
}
ROLL_WORDS = {
    RollState.ACTIVE: QT_TRANSLATE_NOOP("Words", "in use"),
    RollState.LOCKED: QT_TRANSLATE_NOOP("Words", "locked"),
    RollState.VOIDED: QT_TRANSLATE_NOOP("Words", "voided"),
}


def word(text: str) -> str:
    return QCoreApplication.translate("Words", text)


def alarm_lines(alarm: Alarm, language: str) -> tuple[str, str]:
    """(first, second) language text of an alarm: the screen's language first, the other one below it."""
    return (alarm.text.vi, alarm.text.en) if language == "vi" else (alarm.text.en, alarm.text.vi)


ROLL_COLUMNS = (
    QT_TRANSLATE_NOOP("OperatorScreen", "Roll"),
    QT_TRANSLATE_NOOP("OperatorScreen", "State"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Activated"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Unused"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Voided"),
    QT_TRANSLATE_NOOP("OperatorScreen", "Refused"),
)

COUNTER_ROWS = (
    ("printed", QT_TRANSLATE_NOOP("OperatorScreen", "Printed")),
    ("verified", QT_TRANSLATE_NOOP("OperatorScreen", "Verified")),
    ("activated", QT_TRANSLATE_NOOP("OperatorScreen", "Activated")),
    ("voided", QT_TRANSLATE_NOOP("OperatorScreen", "Voided")),
    ("waiting", QT_TRANSLATE_NOOP("OperatorScreen", "Waiting to be sent")),
    ("confirmed", QT_TRANSLATE_NOOP("OperatorScreen", "Confirmed by the server")),
)
