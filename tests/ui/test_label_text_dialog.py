"""The batch dialog refuses a batch whose label text would not print whole, in the operator's language."""

from __future__ import annotations

import pytest
from PyQt5.QtCore import Qt
from ruamel.yaml import YAML

from tests.integration.line_harness import SimLine

LONG_NAME = "Tinh dầu tràm Lộc Thủy nguyên chất loại đặc biệt xuất khẩu 50ml"


@pytest.fixture
def long_named_line(line: SimLine) -> SimLine:
    products = line.folder / "products.yaml"
    yaml = YAML()
    data = yaml.load(products.read_text(encoding="utf-8"))
    data["products"][0]["name"] = LONG_NAME
    yaml.dump(data, products)
    return line


def test_the_batch_dialog_refuses_a_product_name_too_long_for_the_label(qtbot, make_window,
                                                                        long_named_line: SimLine) -> None:
    window = make_window(language="vi")
    dialog = window.operator.new_batch()
    assert dialog.product.name == LONG_NAME
    dialog.lot_edit.setText("L261203")
    qtbot.mouseClick(dialog.ok_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: "Tên sản phẩm" in dialog.error_label.text(), timeout=10_000)
    assert dialog.error_label.text().startswith("Tên sản phẩm cần 4 dòng trên nhãn nhưng chỗ dành cho nó chỉ có 2 dòng")
    assert "wraps to 4 lines" in dialog.error_label.toolTip()       # the station's own words, in English
    assert dialog.isVisible() and dialog.ok_button.isEnabled()
    assert long_named_line.query("SELECT count(*) FROM batches WHERE lot = ?", "L261203") == [(0,)]
    dialog.reject()
