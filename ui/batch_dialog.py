"""The new-batch dialog: lot, production date, expiry (from the shelf life or typed), planned quantity, origin
and the stages of its production diary; a batch whose stamps would not print whole is refused in the operator's
words.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from station.batches import default_lot, expiry_from_shelf_life
from station.domain import Batch, Product, Stage
from station.errors import LabelTextTooLong, LabelTextUnprintable, StampTooLarge, StationError
from station.gs1 import validate_lot
from ui.adaptive import Density, FitScrollArea
from ui.bridge import StationBridge
from ui.qt import (
    QBoxLayout,
    QButtonGroup,
    QDate,
    QDateEdit,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
    Signal,
)


class BatchDialog(QDialog):
    """Create a batch: lot, production date, expiry (from the shelf life or typed), planned quantity, origin and
    the stages of its production diary."""

    created = Signal(object)   # Batch

    STAGE_COLUMNS = 4

    def __init__(self, bridge: StationBridge, product: Product, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bridge = bridge
        self.product = product
        self.setWindowTitle(self.tr("New batch"))
        self.setModal(True)
        self.density: Density = getattr(parent, "density", None) or Density.LARGE
        compact = self.density.compact
        if not compact:
            self.setMinimumWidth(820)
        today = QDate.currentDate()

        self.product_label = QLabel(f"<b>{product.name}</b><br>{product.producer} · GTIN {product.gtin}")
        self.lot_edit = QLineEdit(default_lot(dt.date.today()))
        self.lot_edit.setMaxLength(20)
        self.lot_edit.setPlaceholderText(self.tr("e.g. MX2611A"))
        self.produced_edit = self._date_edit(today)
        self.expiry_auto = QRadioButton()
        self.expiry_typed = QRadioButton(self.tr("Type the expiry date"))
        group = QButtonGroup(self)
        group.addButton(self.expiry_auto)
        group.addButton(self.expiry_typed)
        self.expiry_edit = self._date_edit(today.addDays(product.shelf_life_days or 365))
        if product.shelf_life_days:
            self.expiry_auto.setChecked(True)
        else:
            self.expiry_auto.setEnabled(False)
            self.expiry_typed.setChecked(True)
        self.planned_spin = QSpinBox()
        self.planned_spin.setRange(0, 10_000_000)
        self.planned_spin.setSpecialValueText(self.tr("not planned"))
        self.planned_spin.setSingleStep(100)
        self.origin_edit = QLineEdit(product.region)

        self.stages = QTableWidget(0, self.STAGE_COLUMNS)
        self.stages.setHorizontalHeaderLabels([self.tr("Stage"), self.tr("Date (dd/mm/yyyy)"), self.tr("Place"),
                                               self.tr("Note")])
        self.stages.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        self.stages.setMinimumHeight(170 if not compact else 120)
        add_stage = QPushButton(self.tr("Add a stage"))
        remove_stage = QPushButton(self.tr("Remove the stage"))
        add_stage.clicked.connect(lambda: self.add_stage())
        remove_stage.clicked.connect(self._remove_stage)

        self.error_label = QLabel("")
        self.error_label.setObjectName("errorText")
        self.error_label.setWordWrap(True)
        self.ok_button = QPushButton(self.tr("Create the batch"))
        self.ok_button.setObjectName("primary")
        cancel = QPushButton(self.tr("Cancel"))
        self.ok_button.clicked.connect(self.submit)
        cancel.clicked.connect(self.reject)
        self.expiry_auto.toggled.connect(self._update_expiry)
        self.produced_edit.dateChanged.connect(self._update_expiry)

        form = QFormLayout()
        if compact:                     # a field too wide for the row goes under its label
            form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        form.addRow(self.tr("Product"), self.product_label)
        form.addRow(self.tr("Lot"), self.lot_edit)
        form.addRow(self.tr("Production date"), self.produced_edit)
        expiry_box = QBoxLayout(QBoxLayout.TopToBottom if compact else QBoxLayout.LeftToRight)
        expiry_box.addWidget(self.expiry_auto)
        expiry_box.addWidget(self.expiry_typed)
        expiry_box.addWidget(self.expiry_edit)
        form.addRow(self.tr("Expiry"), expiry_box)
        form.addRow(self.tr("Planned quantity"), self.planned_spin)
        form.addRow(self.tr("Origin"), self.origin_edit)
        stage_buttons = QHBoxLayout()
        stage_buttons.addWidget(add_stage)
        stage_buttons.addWidget(remove_stage)
        stage_buttons.addStretch(1)
        buttons = QHBoxLayout()
        if not compact:
            buttons.addWidget(self.error_label, 1)
        else:
            buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.ok_button)
        content = QWidget()
        fields = QVBoxLayout(content)
        fields.addLayout(form)
        fields.addWidget(QLabel(self.tr("Production diary")))
        fields.addWidget(self.stages, 1)
        fields.addLayout(stage_buttons)
        layout = QVBoxLayout(self)
        if compact:
            # On a small screen the fields scroll; the error and the Cancel / Create buttons stay in sight.
            fields.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(FitScrollArea(content), 1)
            layout.addWidget(self.error_label)
        else:
            fields.setContentsMargins(0, 0, 0, 0)
            layout.addWidget(content, 1)
        layout.addLayout(buttons)
        self._update_expiry()
        if compact and parent is not None:
            room = parent.window().size()
            self.resize(min(900, room.width() - 16), min(640, room.height() - 16))

    @staticmethod
    def _date_edit(date: QDate) -> QDateEdit:
        edit = QDateEdit(date)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("dd/MM/yyyy")
        return edit

    def _update_expiry(self, *_: Any) -> None:
        days = self.product.shelf_life_days
        expiry = expiry_from_shelf_life(self.product, self.produced_edit.date().toPyDate())
        if expiry is not None:
            auto = QDate(expiry)
            self.expiry_auto.setText(self.tr("From the shelf life (%n days): ", "", days) + auto.toString("dd/MM/yyyy"))
            if self.expiry_auto.isChecked():
                self.expiry_edit.setDate(auto)
        self.expiry_edit.setEnabled(self.expiry_typed.isChecked())

    def add_stage(self, name: str = "", date: str = "", place: str = "", note: str = "") -> None:
        row = self.stages.rowCount()
        self.stages.insertRow(row)
        for column, text in enumerate((name, date, place, note)):
            self.stages.setItem(row, column, QTableWidgetItem(text))

    def _remove_stage(self) -> None:
        row = self.stages.currentRow()
        if row >= 0:
            self.stages.removeRow(row)

    def _cell(self, row: int, column: int) -> str:
        item = self.stages.item(row, column)
        return item.text().strip() if item is not None else ""

    def draft(self) -> Batch:
        """The batch as typed; raises StationError (or ValueError) naming the field that is wrong."""
        lot = validate_lot(self.lot_edit.text().strip())
        produced = self.produced_edit.date().toPyDate()
        expiry = self.expiry_edit.date().toPyDate()
        if expiry <= produced:
            raise ValueError(self.tr("the expiry date must be after the production date"))
        stages = []
        for row in range(self.stages.rowCount()):
            name = self._cell(row, 0)
            date_text = self._cell(row, 1)
            if not name and not date_text:
                continue
            if not name:
                raise ValueError(self.tr("stage %1 has a date but no name").replace("%1", str(row + 1)))
            date = None
            if date_text:
                try:
                    date = dt.datetime.strptime(date_text, "%d/%m/%Y").date()
                except ValueError:
                    raise ValueError(self.tr("stage %1: the date must be written dd/mm/yyyy")
                                     .replace("%1", str(row + 1))) from None
            stages.append(Stage(name=name, date=date, place=self._cell(row, 2), note=self._cell(row, 3)))
        planned = self.planned_spin.value() or None
        return Batch(id=None, gtin=self.product.gtin, lot=lot, production_date=produced, expiry_date=expiry,
                     origin=self.origin_edit.text().strip(), stages=tuple(stages), planned_quantity=planned)

    def submit(self) -> None:
        try:
            draft = self.draft()
        except (StationError, ValueError) as exc:
            self.error_label.setText(str(exc))
            return
        self.error_label.setText(self.tr("Saving…"))
        self.ok_button.setEnabled(False)

        def create(station: Any) -> Batch:
            # The stamps' QR must fit the label at a readable size: refused here, before any stamp is wasted.
            station.check_batch_label(draft.gtin, draft.lot, draft.expiry_date)
            batch = station.store.create_batch(draft)
            station.store.audit("operator", "batch_created", f"{batch.gtin} lot {batch.lot} (batch {batch.id})")
            return batch

        def done(batch: Batch) -> None:
            self.created.emit(batch)
            self.accept()

        def failed(exc: BaseException) -> None:
            self.ok_button.setEnabled(True)
            if isinstance(exc, StampTooLarge):
                self.error_label.setText(self.stamp_too_large(exc))
                self.error_label.setToolTip(str(exc))
                return
            if isinstance(exc, (LabelTextTooLong, LabelTextUnprintable)):
                self.error_label.setText(self.text_too_long(exc))
                self.error_label.setToolTip(str(exc))
                return
            self.error_label.setText(str(exc))

        self.bridge.call(create, done=done, failed=failed, owner=self)

    def stamp_too_large(self, exc: StampTooLarge) -> str:
        """The refusal in the operator's words, with the figures: what the lot makes and what the label holds."""
        needs = (self.tr("QR version %1").replace("%1", str(exc.version)) if exc.version
                 else self.tr("more than a QR code holds"))
        return (self.tr("Lot %1 makes the stamp's QR code too large to read: its link is %2 characters and needs "
                        "%3, the label holds version %4 (%5 characters) at most. Use a shorter lot, without / % ? & "
                        "+ # (each takes 3 characters).")
                .replace("%1", exc.lot).replace("%2", str(exc.length)).replace("%3", needs)
                .replace("%4", str(exc.max_version)).replace("%5", str(exc.max_length)))


    def text_too_long(self, exc: LabelTextTooLong | LabelTextUnprintable) -> str:
        """The refusal in the operator's words: which text would not print whole, and by how much."""
        what = {
            "product_name": self.tr("The product name"),
            "producer": self.tr("The producer's name"),
            "lot": self.tr("The lot"),
            "serial": self.tr("The serial number"),
        }.get(exc.field, exc.field)
        if isinstance(exc, LabelTextUnprintable):
            why = (self.tr("%1 has letters the label's font cannot print (%2): they would print as boxes.")
                   .replace("%2", " ".join(exc.missing)))
        elif exc.unit == "lines":
            why = (self.tr("%1 needs %2 lines on the label and its place holds %3: the rest would print on top of "
                           "the last line.")
                   .replace("%2", f"{exc.needs:.0f}").replace("%3", f"{exc.room:.0f}"))
        else:
            why = (self.tr("%1 is %2 dots wide and the label has %3 left: its end would not be printed.")
                   .replace("%2", f"{exc.needs:.0f}").replace("%3", f"{exc.room:.0f}"))
        fix = (self.tr("Use a shorter lot.") if exc.field == "lot"
               else self.tr("Ask the technician to shorten it in the product list or give it more room on the label."))
        return why.replace("%1", what) + " " + fix
