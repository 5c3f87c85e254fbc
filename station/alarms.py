"""Alarms the line raises, each with what happened and what to do, in Vietnamese first and English second."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field


class Severity(str, enum.Enum):
    INFO = "info"
    WARNING = "warning"        # the line goes on
    STOP = "stop"              # the line paused or stopped until someone acts


@dataclass(frozen=True)
class AlarmText:
    vi: str
    en: str


# code -> (severity, text). Codes are stable: they are logged, published in the status and tested.
CATALOGUE: dict[str, tuple[Severity, AlarmText]] = {
    "printer_paper_out": (Severity.STOP, AlarmText(
        "Hết giấy in — thay cuộn tem rồi bấm Tiếp tục",
        "Out of labels — load a new roll, then press Resume")),
    "printer_ribbon_out": (Severity.STOP, AlarmText(
        "Hết ruy băng mực — thay ruy băng rồi bấm Tiếp tục",
        "Ribbon out — load a new ribbon, then press Resume")),
    "printer_head_open": (Severity.STOP, AlarmText(
        "Đầu in đang mở — đóng nắp đầu in rồi bấm Tiếp tục",
        "Print head open — close the head, then press Resume")),
    "printer_paused": (Severity.STOP, AlarmText(
        "Máy in đang tạm dừng — bấm nút PAUSE trên máy in rồi bấm Tiếp tục",
        "Printer paused — press PAUSE on the printer, then press Resume")),
    "printer_fault": (Severity.STOP, AlarmText(
        "Máy in báo lỗi — kiểm tra máy in rồi bấm Tiếp tục",
        "Printer fault — check the printer, then press Resume")),
    "printer_unreachable": (Severity.STOP, AlarmText(
        "Không liên lạc được máy in — kiểm tra nguồn và dây mạng/cáp của máy in",
        "Printer not answering — check its power and cable")),
    "too_many_failures": (Severity.STOP, AlarmText(
        "Nhiều tem liên tiếp không kiểm tra được — kiểm tra máy quét và chất lượng in rồi chạy lại",
        "Too many stamps in a row failed verification — check the scanner and the print quality, then start again")),
    "verification_failed": (Severity.WARNING, AlarmText(
        "Tem không đạt kiểm tra đã bị hủy — loại sản phẩm đó ra khỏi băng chuyền",
        "A stamp failed verification and was voided — take that item off the line")),
    "stray_read": (Severity.WARNING, AlarmText(
        "Máy quét đọc được mã không thuộc tem vừa in — kiểm tra tem lạ trên băng chuyền",
        "The scanner read a code that is not a stamp just printed — look for a foreign stamp on the line")),
    "foreign_stamp": (Severity.STOP, AlarmText(
        "Phát hiện tem lạ trên băng chuyền (không phải tem vừa in) — lấy sản phẩm đó ra và báo quản lý",
        "A foreign stamp is on the line (not one just printed) — take that item off and tell the supervisor")),
    "duplicate_stamp": (Severity.STOP, AlarmText(
        "Phát hiện tem trùng (tem đã dùng trước đó) — lấy sản phẩm đó ra và báo quản lý",
        "A duplicated stamp is on the line (one already used) — take that item off and tell the supervisor")),
    "scanner_flood": (Severity.WARNING, AlarmText(
        "Máy quét gửi quá nhiều mã (nhiều hơn hẳn số sản phẩm) — kiểm tra máy quét (chế độ quét liên tục, mã dán "
        "trước đầu đọc, dây cáp); dây chuyền vẫn chạy, các lần đọc thừa được ghi lại",
        "The scanner sends far more reads than there are items — check it (continuous scan mode, a code held in "
        "front of it, its cable); the line goes on and the extra reads are recorded")),
    "print_quality_drift": (Severity.WARNING, AlarmText(
        "Chất lượng in đang giảm — lau đầu in và kiểm tra ruy băng",
        "Print quality is dropping — clean the print head and check the ribbon")),
    "item_without_stamp": (Severity.WARNING, AlarmText(
        "Sản phẩm đi qua không được dán tem (dây chuyền chạy nhanh hơn máy in) — sản phẩm đã bị loại",
        "An item passed without a stamp (the line is faster than the printer) — it was rejected")),
    "interrupted_stamps_voided": (Severity.INFO, AlarmText(
        "Đã hủy các tem chưa kiểm tra của lần chạy trước (trạm bị tắt giữa chừng)",
        "Voided the unverified stamps of the previous run (the station stopped mid-way)")),
    # The broker refuses delivery (station.relay): the line goes on, every event stays in the outbox and goes as
    # soon as the broker accepts; the detail names what the broker said, the user, the topic and the file.
    "mqtt_bad_credentials": (Severity.WARNING, AlarmText(
        "Máy chủ MQTT từ chối tên đăng nhập hoặc mật khẩu — kiểm tra mqtt.username / mqtt.password trong "
        "config/station.yaml; các sự kiện vẫn được giữ và sẽ gửi khi máy chủ chấp nhận",
        "The MQTT broker refused the user name or password — check mqtt.username / mqtt.password in "
        "config/station.yaml; events are kept and sent once the broker accepts")),
    "mqtt_not_authorised": (Severity.WARNING, AlarmText(
        "Máy chủ MQTT không cho trạm đăng nhập (không được phép) — kiểm tra mqtt.username / mqtt.password trong "
        "config/station.yaml và quyền của người dùng đó trên máy chủ; các sự kiện vẫn được giữ để gửi sau",
        "The MQTT broker does not let this station log in (not authorised) — check mqtt.username / mqtt.password "
        "in config/station.yaml and that user's rights on the broker; events are kept to send later")),
    "mqtt_client_id_refused": (Severity.WARNING, AlarmText(
        "Máy chủ MQTT từ chối mã client của trạm — kiểm tra mqtt.client_id trong config/station.yaml (mặc định "
        "site-station) theo quy định của máy chủ; các sự kiện vẫn được giữ để gửi sau",
        "The MQTT broker refused this station's client id — check mqtt.client_id in config/station.yaml (default "
        "site-station) against the broker's rules; events are kept to send later")),
    "mqtt_connection_refused": (Severity.WARNING, AlarmText(
        "Máy chủ MQTT từ chối kết nối — xem chi tiết và nhật ký của máy chủ, kiểm tra mqtt.url trong "
        "config/station.yaml; các sự kiện vẫn được giữ để gửi sau",
        "The MQTT broker refused the connection — see the detail and the broker's log, check mqtt.url in "
        "config/station.yaml; events are kept to send later")),
    "mqtt_publish_denied": (Severity.WARNING, AlarmText(
        "Máy chủ MQTT không cho trạm gửi sự kiện (ACL) — kiểm tra ACL của máy chủ cho người dùng mqtt.username và "
        "chủ đề …/events của trạm; các sự kiện vẫn được giữ để gửi sau",
        "The MQTT broker does not let this station publish its events (ACL) — check the broker's ACL for the user "
        "in mqtt.username and the station's …/events topic; events are kept to send later")),
    # The central server refused an event (station.relay EVENT_REJECTED): the detail names the event and the reason.
    "event_rejected": (Severity.WARNING, AlarmText(
        "Máy chủ trung tâm từ chối một sự kiện (tài liệu bị cách ly) — xem lý do, sửa nguyên nhân (danh mục sản "
        "phẩm, cấu hình) và báo kỹ thuật viên; sự kiện được giữ ở trạng thái bị từ chối, không gửi lại",
        "The central server rejected an event (its document is quarantined there) — see the reason, fix the cause "
        "(product list, configuration) and tell the technician; the event is kept as rejected and not resent")),
}


@dataclass(frozen=True)
class Alarm:
    code: str
    severity: Severity
    text: AlarmText
    detail: str = ""
    at: float = field(default_factory=time.time)

    @classmethod
    def raise_(cls, code: str, detail: str = "") -> Alarm:
        severity, text = CATALOGUE[code]
        return cls(code=code, severity=severity, text=text, detail=detail)

    def __str__(self) -> str:
        extra = f" ({self.detail})" if self.detail else ""
        return f"[{self.code}] {self.text.vi} / {self.text.en}{extra}"


PRINTER_FAULT_ALARMS = {
    "paper_out": "printer_paper_out",
    "ribbon_out": "printer_ribbon_out",
    "head_open": "printer_head_open",
    "paused": "printer_paused",
}


def printer_alarm(faults: tuple[str, ...], unreachable: bool, detail: str) -> Alarm:
    """The most specific alarm for a printer's condition."""
    if unreachable:
        return Alarm.raise_("printer_unreachable", detail)
    for fault in faults:
        if fault in PRINTER_FAULT_ALARMS:
            return Alarm.raise_(PRINTER_FAULT_ALARMS[fault], detail)
    return Alarm.raise_("printer_fault", detail)


# Pre-printed stamps and the checks before activation (issue 5). One alarm per refusal reason, so the operator
# reads what is wrong with the stamp in front of them, not a generic "refused".
CATALOGUE.update({
    "code_not_in_roll": (Severity.STOP, AlarmText(
        "Tem không thuộc cuộn tem nào đã đăng ký (tem lạ) — lấy sản phẩm đó ra và báo quản lý",
        "A stamp that is in no registered roll (foreign) — take that item off and tell the supervisor")),
    "code_already_activated": (Severity.STOP, AlarmText(
        "Tem đã được kích hoạt trước đó (tem trùng) — lấy sản phẩm đó ra và báo quản lý",
        "A stamp already activated (duplicate) — take that item off and tell the supervisor")),
    "code_activated_elsewhere": (Severity.STOP, AlarmText(
        "Máy chủ báo tem này đã được kích hoạt ở nơi khác — lấy sản phẩm đó ra và báo quản lý",
        "The server says this stamp is already active elsewhere — take that item off and tell the supervisor")),
    "code_wrong_product": (Severity.STOP, AlarmText(
        "Tem thuộc cuộn dành cho sản phẩm khác — kiểm tra cuộn tem đang lắp trên máy",
        "The stamp is from a roll meant for another product — check the roll on the line")),
    "code_roll_voided": (Severity.STOP, AlarmText(
        "Tem thuộc cuộn đã bị hủy — tháo cuộn tem đó ra và báo quản lý",
        "The stamp is from a voided roll — take that roll off and tell the supervisor")),
    "code_roll_locked": (Severity.STOP, AlarmText(
        "Tem thuộc cuộn đang bị khóa — dùng cuộn khác hoặc nhờ quản lý mở khóa",
        "The stamp is from a locked roll — use another roll or ask the supervisor to unlock it")),
    "code_voided": (Severity.STOP, AlarmText(
        "Tem này đã bị hủy trước đó — lấy sản phẩm đó ra và dán tem khác",
        "This stamp was voided before — take that item off and use another stamp")),
    "batch_locked": (Severity.STOP, AlarmText(
        "Lô hàng đang bị khóa (thu hồi hoặc tạm giữ chất lượng) — không kích hoạt thêm tem, báo quản lý",
        "The batch is locked (recall or quality hold) — no more stamps are activated; tell the supervisor")),
    "batch_closed": (Severity.STOP, AlarmText(
        "Lô hàng đã đóng — chọn hoặc mở lô mới",
        "The batch is closed — choose or open a new batch")),
    "code_unreadable": (Severity.WARNING, AlarmText(
        "Không đọc được tem — sản phẩm đã bị loại, kiểm tra tem và cho chạy lại",
        "The stamp could not be read — the item was rejected; check the stamp and run it again")),
    "code_line_not_running": (Severity.WARNING, AlarmText(
        "Tem đi qua khi dây chuyền đang dừng — sản phẩm đã bị loại, tem chưa được kích hoạt",
        "A stamp passed while the line was stopped — the item was rejected, the stamp is not activated")),
    "product_mismatch": (Severity.STOP, AlarmText(
        "Mã vạch sản phẩm không đúng với lô đang chạy (lẫn sản phẩm) — dừng dây chuyền, kiểm tra sản phẩm",
        "The product barcode is not the running batch's product (a mix-up) — line stopped, check the products")),
    "product_barcode_unreadable": (Severity.WARNING, AlarmText(
        "Không đọc được mã vạch sản phẩm — kiểm tra máy quét mã vạch sản phẩm",
        "The product barcode could not be read — check the product barcode scanner")),
})

# RefusalReason value -> alarm code.
REFUSAL_ALARMS = {
    "not_in_roll": "code_not_in_roll",
    "already_activated": "code_already_activated",
    "activated_elsewhere": "code_activated_elsewhere",
    "wrong_product": "code_wrong_product",
    "roll_voided": "code_roll_voided",
    "roll_locked": "code_roll_locked",
    "code_voided": "code_voided",
    "batch_closed": "batch_closed",
    "batch_locked": "batch_locked",
    "unreadable": "code_unreadable",
    "line_not_running": "code_line_not_running",
    "product_mismatch": "product_mismatch",
}
