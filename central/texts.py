"""The trace page's words, Vietnamese first, English second: one entry per text, both languages side by side."""

from __future__ import annotations

LANGUAGES = ("vi", "en")

TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Truy xuất nguồn gốc", "Product traceability"),
    "switch": ("English", "Tiếng Việt"),
    "verdict.genuine": ("Tem chính hãng, đang hiệu lực", "Genuine stamp, active"),
    "verdict.genuine.detail": ("Tem này do chương trình truy xuất nguồn gốc cấp và được kích hoạt khi đóng gói.",
                               "This stamp was issued by the traceability programme and activated at packing."),
    "verdict.voided": ("Tem đã bị hủy — đừng mua sản phẩm này", "This stamp was cancelled — do not buy"),
    "verdict.voided.detail": ("Tem này đã bị hủy tại cơ sở sản xuất và không còn gắn với sản phẩm nào.",
                              "The producer cancelled this stamp; it belongs to no product."),
    "verdict.unknown": ("Không tìm thấy tem — có thể là hàng giả",
                        "Stamp not found — possibly counterfeit"),
    "verdict.unknown.detail": ("Mã này không do chương trình truy xuất nguồn gốc cấp. Đừng mua, và báo cho cửa hàng.",
                               "This code was not issued by the traceability programme. Do not buy; tell the shop."),
    "verdict.mismatch": ("Thông tin trên tem không khớp — có thể là tem giả",
                         "The stamp's details do not match — possibly a fake"),
    "verdict.mismatch.lot": ("Số lô in trên mã khác với số lô của tem đã cấp.",
                             "The lot printed in the code differs from the lot of the issued stamp."),
    "verdict.mismatch.expiry": ("Hạn sử dụng in trên mã khác với hạn của tem đã cấp.",
                                "The expiry printed in the code differs from the issued stamp's."),
    "verdict.recalled": ("Lô hàng đã bị thu hồi — đừng sử dụng", "This batch has been recalled — do not use"),
    "verdict.on_hold": ("Lô hàng đang tạm dừng lưu hành", "This batch is on hold"),
    "verdict.batch_reason": ("Lý do", "Reason"),
    "copy.warning": ("Cảnh báo: tem này đã được kiểm tra {count} lần ở {places} nơi khác nhau. Mỗi tem thật chỉ "
                     "gắn trên một sản phẩm: nếu bạn không phải người mua đầu tiên, rất có thể đây là tem bị sao chép.",
                     "Warning: this stamp has been checked {count} times in {places} different places. A real stamp "
                     "is on one product only: unless you bought it first, this is very likely a copied stamp."),
    "copy.warning.count": ("Cảnh báo: tem này đã được kiểm tra {count} lần. Mỗi tem thật chỉ gắn trên một sản phẩm: "
                           "nếu bạn không phải người mua đầu tiên, rất có thể đây là tem bị sao chép.",
                           "Warning: this stamp has been checked {count} times. A real stamp is on one product only: "
                           "unless you bought it first, this is very likely a copied stamp."),
    "scans": ("Kiểm tra lần đầu lúc {first}, đã kiểm tra {count} lần", "First checked on {first}, checked {count} times"),
    "section.product": ("Sản phẩm", "Product"),
    "section.batch": ("Lô hàng", "Batch"),
    "section.diary": ("Nhật ký sản xuất", "Production diary"),
    "section.stamp": ("Tem truy xuất", "Trace stamp"),
    "product.name": ("Tên sản phẩm", "Product name"),
    "product.image": ("Hình ảnh", "Image"),
    "producer.name": ("Cơ sở sản xuất", "Producer"),
    "producer.address": ("Địa chỉ", "Address"),
    "batch.lot": ("Số lô", "Lot"),
    "batch.production_date": ("Ngày sản xuất", "Production date"),
    "batch.expiry": ("Hạn sử dụng", "Expiry date"),
    "batch.shelf_life": ("Thời hạn sử dụng", "Shelf life"),
    "batch.shelf_life.days": ("{days} ngày", "{days} days"),
    "batch.standards": ("Tiêu chuẩn áp dụng", "Applied standards"),
    "stamp.code": ("Mã truy xuất", "Trace code"),
    "stamp.serial": ("Số sê-ri", "Serial"),
    "stamp.activated": ("Kích hoạt lúc", "Activated on"),
    "stamp.activated_where": ("Kích hoạt tại", "Activated at"),
    "stamp.voided": ("Hủy lúc", "Cancelled on"),
    "stamp.void_reason": ("Lý do hủy", "Reason"),
    "stage.raw_material": ("Nguyên liệu", "Raw material"),
    "stage.harvest": ("Thu hoạch", "Harvest"),
    "stage.processing": ("Chế biến", "Processing"),
    "stage.packing": ("Đóng gói", "Packing"),
    "stage.place": ("Nơi", "Place"),
    "stage.time": ("Thời gian", "Time"),
    "missing": ("Chưa có dữ liệu — nhà sản xuất cần bổ sung", "Missing — the producer must supply it"),
    "diary.none": ("Chưa có nhật ký sản xuất — nhà sản xuất cần bổ sung",
                   "No production diary yet — the producer must supply it"),
    "site_station": ("cơ sở {site}, dây chuyền {station}", "site {site}, line {station}"),
    "bad.title": ("Mã không hợp lệ", "Invalid code"),
    "bad.detail": ("Đường dẫn này không phải là mã truy xuất của chương trình.",
                   "This address is not a trace code of the programme."),
    "footer": ("Chương trình truy xuất nguồn gốc sản phẩm — Sở Khoa học và Công nghệ",
               "Product traceability programme — Department of Science and Technology"),
}


def text(key: str, lang: str, **values: object) -> str:
    vi, en = TEXTS[key]
    chosen = en if lang == "en" else vi
    return chosen.format(**values) if values else chosen
