<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="vi_VN" sourcelanguage="en">
<context>
    <name>AlarmBanner</name>
    <message>
        <source>Acknowledge</source>
        <translation>Đã biết</translation>
    </message>
    <message numerus="yes">
        <source>(+%n more)</source>
        <translation>
            <numerusform>(thêm %n cảnh báo)</numerusform>
        </translation>
    </message>
</context>
<context>
    <name>AuditTab</name>
    <message>
        <source>Time (UTC)</source>
        <translation>Thời gian (UTC)</translation>
    </message>
    <message>
        <source>Who</source>
        <translation>Ai</translation>
    </message>
    <message>
        <source>What</source>
        <translation>Việc gì</translation>
    </message>
    <message>
        <source>Detail</source>
        <translation>Chi tiết</translation>
    </message>
</context>
<context>
    <name>BatchDialog</name>
    <message>
        <source>New batch</source>
        <translation>Tạo lô mới</translation>
    </message>
    <message>
        <source>e.g. MX2611A</source>
        <translation>ví dụ MX2611A</translation>
    </message>
    <message>
        <source>Type the expiry date</source>
        <translation>Nhập hạn dùng</translation>
    </message>
    <message>
        <source>not planned</source>
        <translation>chưa định</translation>
    </message>
    <message>
        <source>Stage</source>
        <translation>Công đoạn</translation>
    </message>
    <message>
        <source>Date (dd/mm/yyyy)</source>
        <translation>Ngày (nn/tt/nnnn)</translation>
    </message>
    <message>
        <source>Place</source>
        <translation>Địa điểm</translation>
    </message>
    <message>
        <source>Note</source>
        <translation>Ghi chú</translation>
    </message>
    <message>
        <source>Add a stage</source>
        <translation>Thêm công đoạn</translation>
    </message>
    <message>
        <source>Remove the stage</source>
        <translation>Xóa công đoạn</translation>
    </message>
    <message>
        <source>Create the batch</source>
        <translation>Tạo lô</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>Hủy bỏ</translation>
    </message>
    <message>
        <source>Product</source>
        <translation>Sản phẩm</translation>
    </message>
    <message>
        <source>Lot</source>
        <translation>Số lô</translation>
    </message>
    <message>
        <source>Production date</source>
        <translation>Ngày sản xuất</translation>
    </message>
    <message>
        <source>Expiry</source>
        <translation>Hạn sử dụng</translation>
    </message>
    <message>
        <source>Planned quantity</source>
        <translation>Số lượng kế hoạch</translation>
    </message>
    <message>
        <source>Origin</source>
        <translation>Xuất xứ</translation>
    </message>
    <message>
        <source>Production diary</source>
        <translation>Nhật ký sản xuất</translation>
    </message>
    <message numerus="yes">
        <source>From the shelf life (%n days): </source>
        <translation>
            <numerusform>Theo hạn dùng của sản phẩm (%n ngày): </numerusform>
        </translation>
    </message>
    <message>
        <source>the expiry date must be after the production date</source>
        <translation>hạn sử dụng phải sau ngày sản xuất</translation>
    </message>
    <message>
        <source>stage %1 has a date but no name</source>
        <translation>công đoạn %1 có ngày nhưng chưa có tên</translation>
    </message>
    <message>
        <source>stage %1: the date must be written dd/mm/yyyy</source>
        <translation>công đoạn %1: ngày phải viết dạng nn/tt/nnnn</translation>
    </message>
    <message>
        <source>Saving…</source>
        <translation>Đang lưu…</translation>
    </message>
    <message>
        <source>QR version %1</source>
        <translation>mã QR phiên bản %1</translation>
    </message>
    <message>
        <source>more than a QR code holds</source>
        <translation>nhiều hơn sức chứa của một mã QR</translation>
    </message>
    <message>
        <source>Lot %1 makes the stamp&apos;s QR code too large to read: its link is %2 characters and needs %3, the label holds version %4 (%5 characters) at most. Use a shorter lot, without / % ? &amp; + # (each takes 3 characters).</source>
        <translation>Lô %1 làm mã QR trên tem quá lớn, không đọc được: đường dẫn dài %2 ký tự và cần %3, nhãn chỉ chứa tối đa phiên bản %4 (%5 ký tự). Hãy dùng mã lô ngắn hơn, không có / % ? &amp; + # (mỗi ký tự này chiếm 3 ký tự).</translation>
    </message>
    <message>
        <source>The product name</source>
        <translation>Tên sản phẩm</translation>
    </message>
    <message>
        <source>The producer&apos;s name</source>
        <translation>Tên cơ sở sản xuất</translation>
    </message>
    <message>
        <source>The lot</source>
        <translation>Mã lô</translation>
    </message>
    <message>
        <source>The serial number</source>
        <translation>Số sê-ri</translation>
    </message>
    <message>
        <source>%1 needs %2 lines on the label and its place holds %3: the rest would print on top of the last line.</source>
        <translation>%1 cần %2 dòng trên nhãn nhưng chỗ dành cho nó chỉ có %3 dòng: phần còn lại sẽ in đè lên dòng cuối.</translation>
    </message>
    <message>
        <source>%1 is %2 dots wide and the label has %3 left: its end would not be printed.</source>
        <translation>%1 rộng %2 điểm in nhưng nhãn chỉ còn %3: phần cuối sẽ không được in.</translation>
    </message>
    <message>
        <source>Use a shorter lot.</source>
        <translation>Hãy dùng mã lô ngắn hơn.</translation>
    </message>
    <message>
        <source>Ask the technician to shorten it in the product list or give it more room on the label.</source>
        <translation>Hãy nhờ kỹ thuật viên rút ngắn trong danh sách sản phẩm hoặc dành thêm chỗ trên mẫu nhãn.</translation>
    </message>
    <message>
        <source>%1 has letters the label&apos;s font cannot print (%2): they would print as boxes.</source>
        <translation>%1 có chữ mà phông chữ của nhãn không in được (%2): chúng sẽ in thành ô vuông.</translation>
    </message>
</context>
<context>
    <name>CameraView</name>
    <message>
        <source>Waiting for the camera…</source>
        <translation>Đang chờ hình từ camera…</translation>
    </message>
</context>
<context>
    <name>CountersPanel</name>
    <message>
        <source>This batch</source>
        <translation>Lô này</translation>
    </message>
    <message>
        <source>This shift</source>
        <translation>Ca này</translation>
    </message>
    <message>
        <source>This shift (since %1)</source>
        <translation>Ca này (từ %1)</translation>
    </message>
</context>
<context>
    <name>DevicesPanel</name>
    <message>
        <source>Printer</source>
        <translation>Máy in</translation>
    </message>
    <message>
        <source>Scanner</source>
        <translation>Máy quét</translation>
    </message>
    <message>
        <source>MQTT broker</source>
        <translation>Máy chủ MQTT</translation>
    </message>
    <message>
        <source>Central server</source>
        <translation>Máy chủ trung tâm</translation>
    </message>
    <message>
        <source>ready</source>
        <translation>sẵn sàng</translation>
    </message>
    <message>
        <source>status not known yet</source>
        <translation>chưa biết trạng thái</translation>
    </message>
    <message>
        <source>fault: %1</source>
        <translation>lỗi: %1</translation>
    </message>
    <message>
        <source>not answering</source>
        <translation>không trả lời</translation>
    </message>
    <message>
        <source>connected</source>
        <translation>đã kết nối</translation>
    </message>
    <message>
        <source>not connected</source>
        <translation>chưa kết nối</translation>
    </message>
    <message>
        <source>refused: wrong user name or password</source>
        <translation>bị từ chối: sai tên đăng nhập hoặc mật khẩu</translation>
    </message>
    <message>
        <source>refused: not authorised (user name, password or rights)</source>
        <translation>bị từ chối: không được phép (tên đăng nhập, mật khẩu hoặc quyền)</translation>
    </message>
    <message>
        <source>refused: client id not accepted</source>
        <translation>bị từ chối: mã client không được chấp nhận</translation>
    </message>
    <message>
        <source>refused the connection</source>
        <translation>từ chối kết nối</translation>
    </message>
    <message>
        <source>connected, but may not publish events (ACL)</source>
        <translation>đã kết nối, nhưng không được gửi sự kiện (ACL)</translation>
    </message>
    <message>
        <source>all confirmed</source>
        <translation>đã nhận đủ</translation>
    </message>
    <message numerus="yes">
        <source>%n waiting</source>
        <translation>
            <numerusform>%n tem đang chờ</numerusform>
        </translation>
    </message>
    <message>
        <source>%1 not confirmed, oldest %2 min</source>
        <translation>%1 tem chưa được nhận, lâu nhất %2 phút</translation>
    </message>
</context>
<context>
    <name>DevicesTab</name>
    <message>
        <source>Look for ports again</source>
        <translation>Tìm lại cổng</translation>
    </message>
    <message>
        <source>Use for the scanner</source>
        <translation>Dùng cho máy quét</translation>
    </message>
    <message>
        <source>Use for the printer</source>
        <translation>Dùng cho máy in</translation>
    </message>
    <message>
        <source>Test print</source>
        <translation>In thử</translation>
    </message>
    <message>
        <source>Field</source>
        <translation>Mục</translation>
    </message>
    <message>
        <source>Value</source>
        <translation>Giá trị</translation>
    </message>
    <message>
        <source>Serial ports on this machine</source>
        <translation>Các cổng nối tiếp trên máy</translation>
    </message>
    <message>
        <source>Printer address</source>
        <translation>Địa chỉ máy in</translation>
    </message>
    <message>
        <source>Scanner address</source>
        <translation>Địa chỉ máy quét</translation>
    </message>
    <message>
        <source>Printer status (decoded)</source>
        <translation>Trạng thái máy in (đã giải mã)</translation>
    </message>
    <message>
        <source>What the scanner sends (live)</source>
        <translation>Dữ liệu máy quét gửi (trực tiếp)</translation>
    </message>
    <message>
        <source>Camera view (decoded codes outlined)</source>
        <translation>Hình camera (mã đọc được có khung viền)</translation>
    </message>
    <message>
        <source>(no serial port found)</source>
        <translation>(không tìm thấy cổng nối tiếp nào)</translation>
    </message>
    <message>
        <source>Stop the line before a test print.</source>
        <translation>Hãy dừng dây chuyền trước khi in thử.</translation>
    </message>
    <message>
        <source>Printing…</source>
        <translation>Đang in…</translation>
    </message>
    <message>
        <source>Test label sent to %1.</source>
        <translation>Đã gửi tem in thử tới %1.</translation>
    </message>
    <message>
        <source>Test print failed: %1</source>
        <translation>In thử không được: %1</translation>
    </message>
    <message>
        <source>Lines read: %1 · refused: %2</source>
        <translation>Số dòng đọc: %1 · bị loại: %2</translation>
    </message>
</context>
<context>
    <name>LabelTab</name>
    <message>
        <source>Preview</source>
        <translation>Xem trước</translation>
    </message>
    <message>
        <source>Label template (ZPL)</source>
        <translation>Mẫu tem (ZPL)</translation>
    </message>
    <message>
        <source>As printed (same renderer as the printer simulator), with the current product and batch:</source>
        <translation>Tem như khi in (cùng bộ dựng hình với máy in mô phỏng), với sản phẩm và lô đang chọn:</translation>
    </message>
    <message>
        <source>%1 · %2 × %3 dots</source>
        <translation>%1 · %2 × %3 điểm</translation>
    </message>
</context>
<context>
    <name>LastStampPanel</name>
    <message>
        <source>Last stamp</source>
        <translation>Tem vừa in</translation>
    </message>
    <message>
        <source>Serial %1</source>
        <translation>Sê-ri %1</translation>
    </message>
    <message>
        <source>voided: %1</source>
        <translation>đã hủy: %1</translation>
    </message>
    <message>
        <source>activated</source>
        <translation>đã kích hoạt</translation>
    </message>
    <message>
        <source>Lot %1</source>
        <translation>Lô %1</translation>
    </message>
</context>
<context>
    <name>LineTab</name>
    <message>
        <source>Window</source>
        <translation>Cửa sổ</translation>
    </message>
    <message>
        <source>Full screen (kiosk)</source>
        <translation>Toàn màn hình (kiosk)</translation>
    </message>
    <message>
        <source>The operator presses Resume</source>
        <translation>Người vận hành bấm Tiếp tục</translation>
    </message>
    <message>
        <source>By itself when the printer is ready</source>
        <translation>Tự động khi máy in sẵn sàng</translation>
    </message>
    <message>
        <source>Language of the screens</source>
        <translation>Ngôn ngữ màn hình</translation>
    </message>
    <message>
        <source>Display</source>
        <translation>Hiển thị</translation>
    </message>
    <message>
        <source>After a printer fault the line resumes</source>
        <translation>Sau lỗi máy in, dây chuyền chạy lại</translation>
    </message>
    <message>
        <source>Verification window (seconds)</source>
        <translation>Thời gian chờ kiểm tra (giây)</translation>
    </message>
    <message>
        <source>Failed stamps in a row that stop the line</source>
        <translation>Số tem lỗi liên tiếp thì dừng dây chuyền</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Packing station %1 / %2</source>
        <translation>Trạm đóng gói %1 / %2</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>Đóng</translation>
    </message>
    <message>
        <source>The line is running. Stop it and close the program?</source>
        <translation>Dây chuyền đang chạy. Dừng dây chuyền và đóng chương trình?</translation>
    </message>
</context>
<context>
    <name>MqttTab</name>
    <message>
        <source>Broker address</source>
        <translation>Địa chỉ máy chủ MQTT</translation>
    </message>
    <message>
        <source>User name</source>
        <translation>Tên đăng nhập</translation>
    </message>
    <message>
        <source>Password</source>
        <translation>Mật khẩu</translation>
    </message>
    <message>
        <source>CA certificate</source>
        <translation>Chứng chỉ CA</translation>
    </message>
    <message>
        <source>Client certificate</source>
        <translation>Chứng chỉ máy trạm</translation>
    </message>
    <message>
        <source>Client key</source>
        <translation>Khóa máy trạm</translation>
    </message>
    <message>
        <source>Choose…</source>
        <translation>Chọn…</translation>
    </message>
    <message>
        <source>Test the connection</source>
        <translation>Kiểm tra kết nối</translation>
    </message>
    <message>
        <source>Choose a file</source>
        <translation>Chọn tệp</translation>
    </message>
    <message>
        <source>Certificates and keys (*.pem *.crt *.key);;All files (*)</source>
        <translation>Chứng chỉ và khóa (*.pem *.crt *.key);;Mọi tệp (*)</translation>
    </message>
    <message>
        <source>Testing…</source>
        <translation>Đang thử…</translation>
    </message>
    <message>
        <source>The broker accepts this station.</source>
        <translation>Máy chủ MQTT chấp nhận trạm này.</translation>
    </message>
    <message>
        <source>The connection failed at the step marked ✘.</source>
        <translation>Kết nối thất bại ở bước có dấu ✘.</translation>
    </message>
</context>
<context>
    <name>OperatorScreen</name>
    <message>
        <source>Printed</source>
        <translation>Đã in</translation>
    </message>
    <message>
        <source>Verified</source>
        <translation>Đã kiểm tra</translation>
    </message>
    <message>
        <source>Activated</source>
        <translation>Đã kích hoạt</translation>
    </message>
    <message>
        <source>Voided</source>
        <translation>Đã hủy</translation>
    </message>
    <message>
        <source>Waiting to be sent</source>
        <translation>Chờ gửi</translation>
    </message>
    <message>
        <source>Confirmed by the server</source>
        <translation>Máy chủ đã nhận</translation>
    </message>
    <message>
        <source>New batch</source>
        <translation>Tạo lô mới</translation>
    </message>
    <message>
        <source>Close batch</source>
        <translation>Đóng lô</translation>
    </message>
    <message>
        <source>Technician</source>
        <translation>Kỹ thuật</translation>
    </message>
    <message>
        <source>Product</source>
        <translation>Sản phẩm</translation>
    </message>
    <message>
        <source>Batch</source>
        <translation>Lô</translation>
    </message>
    <message>
        <source>Start</source>
        <translation>Bắt đầu</translation>
    </message>
    <message>
        <source>Pause</source>
        <translation>Tạm dừng</translation>
    </message>
    <message>
        <source>Stop</source>
        <translation>Dừng</translation>
    </message>
    <message>
        <source>until stopped</source>
        <translation>đến khi dừng</translation>
    </message>
    <message>
        <source>Items to pack</source>
        <translation>Số sản phẩm cần đóng</translation>
    </message>
    <message>
        <source>Rate (items per minute)</source>
        <translation>Tốc độ (sản phẩm/phút)</translation>
    </message>
    <message>
        <source>Starting the station: opening the database and the devices…</source>
        <translation>Đang khởi động trạm: mở cơ sở dữ liệu và các thiết bị…</translation>
    </message>
    <message>
        <source>Station ready.</source>
        <translation>Trạm đã sẵn sàng.</translation>
    </message>
    <message>
        <source>The station could not start: %1</source>
        <translation>Trạm không khởi động được: %1</translation>
    </message>
    <message>
        <source>Close batch %1? No more stamps can be printed for it.</source>
        <translation>Đóng lô %1? Sau khi đóng sẽ không in thêm tem cho lô này.</translation>
    </message>
    <message>
        <source>Close the batch</source>
        <translation>Đóng lô</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>Hủy bỏ</translation>
    </message>
    <message>
        <source>Choose or create a batch first.</source>
        <translation>Hãy chọn hoặc tạo lô trước.</translation>
    </message>
    <message>
        <source>Paused by the operator</source>
        <translation>Người vận hành tạm dừng</translation>
    </message>
    <message>
        <source>Resume</source>
        <translation>Tiếp tục</translation>
    </message>
    <message>
        <source>Run finished: %1 activated, %2 voided.</source>
        <translation>Đã chạy xong: %1 tem kích hoạt, %2 tem hủy.</translation>
    </message>
    <message>
        <source>Roll</source>
        <translation>Cuộn</translation>
    </message>
    <message>
        <source>State</source>
        <translation>Trạng thái</translation>
    </message>
    <message>
        <source>Unused</source>
        <translation>Chưa dùng</translation>
    </message>
    <message>
        <source>Refused</source>
        <translation>Bị từ chối</translation>
    </message>
    <message>
        <source>Print stamps here</source>
        <translation>In tem tại đây</translation>
    </message>
    <message>
        <source>Pre-printed rolls</source>
        <translation>Cuộn tem in sẵn</translation>
    </message>
    <message>
        <source>Which line Start runs</source>
        <translation>Nút Bắt đầu chạy dây chuyền nào</translation>
    </message>
    <message>
        <source>Changing the line: starting the station again…</source>
        <translation>Đang đổi dây chuyền: khởi động lại trạm…</translation>
    </message>
    <message>
        <source>The station could not start: see the message below</source>
        <translation>Trạm không khởi động được: xem thông báo bên dưới</translation>
    </message>
    <message>
        <source>Starting the station…</source>
        <translation>Đang khởi động trạm…</translation>
    </message>
    <message>
        <source>No product: add one to the product list</source>
        <translation>Chưa có sản phẩm: hãy thêm vào danh sách sản phẩm</translation>
    </message>
    <message>
        <source>Choose or create a batch (%1)</source>
        <translation>Chọn hoặc tạo lô (%1)</translation>
    </message>
    <message>
        <source>Batch %1 is locked: %2</source>
        <translation>Lô %1 đang bị khóa: %2</translation>
    </message>
    <message>
        <source>Printer not ready: %1</source>
        <translation>Máy in chưa sẵn sàng: %1</translation>
    </message>
</context>
<context>
    <name>PinTab</name>
    <message>
        <source>Change the PIN</source>
        <translation>Đổi mã PIN</translation>
    </message>
    <message>
        <source>New PIN (4 to 8 digits)</source>
        <translation>Mã PIN mới (4 đến 8 chữ số)</translation>
    </message>
    <message>
        <source>New PIN again</source>
        <translation>Nhập lại mã PIN mới</translation>
    </message>
    <message>
        <source>The two PINs differ.</source>
        <translation>Hai mã PIN không giống nhau.</translation>
    </message>
    <message>
        <source>Choose a PIN of 4 to 8 digits, not 0000 and not one digit repeated.</source>
        <translation>Chọn mã PIN 4 đến 8 chữ số, không phải 0000 và không lặp một chữ số.</translation>
    </message>
    <message>
        <source>Saving…</source>
        <translation>Đang lưu…</translation>
    </message>
    <message>
        <source>PIN changed.</source>
        <translation>Đã đổi mã PIN.</translation>
    </message>
</context>
<context>
    <name>RecentPanel</name>
    <message>
        <source>Serial</source>
        <translation>Số sê-ri</translation>
    </message>
    <message>
        <source>Result</source>
        <translation>Kết quả</translation>
    </message>
    <message>
        <source>Delivery</source>
        <translation>Gửi về máy chủ</translation>
    </message>
    <message>
        <source>Recent stamps</source>
        <translation>Tem gần đây</translation>
    </message>
    <message>
        <source>activated</source>
        <translation>đã kích hoạt</translation>
    </message>
    <message>
        <source>voided: %1</source>
        <translation>đã hủy: %1</translation>
    </message>
</context>
<context>
    <name>RollsPanel</name>
    <message>
        <source>Stamp rolls</source>
        <translation>Cuộn tem</translation>
    </message>
    <message>
        <source>%1 (%2): activated %3, unused %4, voided %5, refused %6</source>
        <translation>%1 (%2): đã kích hoạt %3, chưa dùng %4, đã hủy %5, bị từ chối %6</translation>
    </message>
    <message>
        <source>Rolls %1: activated %2, unused %3, voided %4, refused %5</source>
        <translation>Cuộn tem %1: kích hoạt %2, chưa dùng %3, hủy %4, từ chối %5</translation>
    </message>
</context>
<context>
    <name>TechnicianScreen</name>
    <message>
        <source>Broker address</source>
        <translation>Địa chỉ máy chủ MQTT</translation>
    </message>
    <message>
        <source>TLS files</source>
        <translation>Tệp TLS</translation>
    </message>
    <message>
        <source>Host name (DNS)</source>
        <translation>Tên máy chủ (DNS)</translation>
    </message>
    <message>
        <source>Network connection (TCP)</source>
        <translation>Kết nối mạng (TCP)</translation>
    </message>
    <message>
        <source>TLS handshake</source>
        <translation>Bắt tay TLS</translation>
    </message>
    <message>
        <source>MQTT login</source>
        <translation>Đăng nhập MQTT</translation>
    </message>
    <message>
        <source>Technician: enter the PIN</source>
        <translation>Kỹ thuật: nhập mã PIN</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>Xóa</translation>
    </message>
    <message>
        <source>OK</source>
        <translation>Đồng ý</translation>
    </message>
    <message>
        <source>Back to the line</source>
        <translation>Về màn hình dây chuyền</translation>
    </message>
    <message>
        <source>Too many wrong PINs: wait %1 s.</source>
        <translation>Nhập sai quá nhiều lần: chờ %1 giây.</translation>
    </message>
    <message>
        <source>Checking…</source>
        <translation>Đang kiểm tra…</translation>
    </message>
    <message>
        <source>Wrong PIN.</source>
        <translation>Sai mã PIN.</translation>
    </message>
    <message>
        <source>Devices</source>
        <translation>Thiết bị</translation>
    </message>
    <message>
        <source>MQTT</source>
        <translation>MQTT</translation>
    </message>
    <message>
        <source>Label</source>
        <translation>Mẫu tem</translation>
    </message>
    <message>
        <source>PIN</source>
        <translation>Mã PIN</translation>
    </message>
    <message>
        <source>Log</source>
        <translation>Nhật ký</translation>
    </message>
    <message>
        <source>Save the configuration</source>
        <translation>Lưu cấu hình</translation>
    </message>
    <message>
        <source>Apply now (restart the devices)</source>
        <translation>Áp dụng ngay (khởi động lại thiết bị)</translation>
    </message>
    <message>
        <source>This configuration was not read from a file: nothing to save.</source>
        <translation>Cấu hình này không đọc từ tệp: không có gì để lưu.</translation>
    </message>
    <message>
        <source>Checking the new configuration…</source>
        <translation>Đang kiểm tra cấu hình mới…</translation>
    </message>
    <message>
        <source>Nothing changed.</source>
        <translation>Không có thay đổi.</translation>
    </message>
    <message>
        <source>Saved: %1. The devices use the new settings after “Apply now” or the next start.</source>
        <translation>Đã lưu: %1. Thiết bị dùng cài đặt mới sau khi bấm “Áp dụng ngay” hoặc lần khởi động sau.</translation>
    </message>
    <message>
        <source>Not saved, the file is unchanged: %1</source>
        <translation>Chưa lưu, tệp cấu hình giữ nguyên: %1</translation>
    </message>
    <message>
        <source>Stop the line first, then apply.</source>
        <translation>Hãy dừng dây chuyền trước rồi mới áp dụng.</translation>
    </message>
    <message>
        <source>Restarting the devices with the new settings…</source>
        <translation>Đang khởi động lại thiết bị với cài đặt mới…</translation>
    </message>
    <message>
        <source>New settings in use.</source>
        <translation>Đang dùng cài đặt mới.</translation>
    </message>
    <message>
        <source>refused (%1)</source>
        <translation>bị loại (%1)</translation>
    </message>
    <message>
        <source>Line</source>
        <translation>Dây chuyền</translation>
    </message>
    <message>
        <source>Quit the program</source>
        <translation>Thoát chương trình</translation>
    </message>
    <message>
        <source>Bad credentials: the broker refused the user name or password. Check User name and Password.</source>
        <translation>Sai thông tin đăng nhập: máy chủ từ chối tên đăng nhập hoặc mật khẩu. Kiểm tra Tên đăng nhập và Mật khẩu.</translation>
    </message>
    <message>
        <source>Not authorised: the broker does not let this user in. Check User name and Password (Mosquitto answers a wrong password this way too) and the user&apos;s rights on the broker.</source>
        <translation>Không được phép: máy chủ không cho người dùng này đăng nhập. Kiểm tra Tên đăng nhập và Mật khẩu (Mosquitto cũng trả lời như vậy khi sai mật khẩu) và quyền của người dùng trên máy chủ.</translation>
    </message>
    <message>
        <source>The broker refused the client id: check mqtt.client_id against the broker&apos;s rules.</source>
        <translation>Máy chủ từ chối mã client: kiểm tra mqtt.client_id theo quy định của máy chủ.</translation>
    </message>
    <message>
        <source>The broker refused the connection: see the broker&apos;s log.</source>
        <translation>Máy chủ từ chối kết nối: xem nhật ký của máy chủ.</translation>
    </message>
    <message>
        <source>saved — type a new one to change it</source>
        <translation>đã lưu — nhập mật khẩu mới để thay đổi</translation>
    </message>
</context>
<context>
    <name>Words</name>
    <message>
        <source>RUNNING</source>
        <translation>ĐANG CHẠY</translation>
    </message>
    <message>
        <source>PAUSED</source>
        <translation>TẠM DỪNG</translation>
    </message>
    <message>
        <source>STOPPED</source>
        <translation>ĐÃ DỪNG</translation>
    </message>
    <message>
        <source>FAULT</source>
        <translation>LỖI</translation>
    </message>
    <message>
        <source>STOPPING…</source>
        <translation>ĐANG DỪNG…</translation>
    </message>
    <message>
        <source>not read</source>
        <translation>không đọc được</translation>
    </message>
    <message>
        <source>wrong content</source>
        <translation>sai nội dung</translation>
    </message>
    <message>
        <source>unreadable</source>
        <translation>dữ liệu hỏng</translation>
    </message>
    <message>
        <source>printer fault</source>
        <translation>lỗi máy in</translation>
    </message>
    <message>
        <source>line stopped</source>
        <translation>dây chuyền dừng</translation>
    </message>
    <message>
        <source>by hand</source>
        <translation>hủy thủ công</translation>
    </message>
    <message>
        <source>waiting to be sent</source>
        <translation>chờ gửi</translation>
    </message>
    <message>
        <source>sent, not yet confirmed</source>
        <translation>đã gửi, chờ xác nhận</translation>
    </message>
    <message>
        <source>confirmed by the server</source>
        <translation>máy chủ đã nhận</translation>
    </message>
    <message>
        <source>out of labels</source>
        <translation>hết giấy</translation>
    </message>
    <message>
        <source>ribbon out</source>
        <translation>hết ruy băng</translation>
    </message>
    <message>
        <source>head open</source>
        <translation>đầu in mở</translation>
    </message>
    <message>
        <source>paused on the printer</source>
        <translation>tạm dừng trên máy in</translation>
    </message>
    <message>
        <source>cutter fault</source>
        <translation>lỗi dao cắt</translation>
    </message>
    <message>
        <source>too hot</source>
        <translation>quá nóng</translation>
    </message>
    <message>
        <source>too cold</source>
        <translation>quá lạnh</translation>
    </message>
    <message>
        <source>buffer full</source>
        <translation>đầy bộ nhớ đệm</translation>
    </message>
    <message>
        <source>never printed</source>
        <translation>chưa in (trả lại số)</translation>
    </message>
    <message>
        <source>batch locked</source>
        <translation>lô bị khóa</translation>
    </message>
    <message>
        <source>in use</source>
        <translation>đang dùng</translation>
    </message>
    <message>
        <source>locked</source>
        <translation>đang khóa</translation>
    </message>
    <message>
        <source>voided</source>
        <translation>đã hủy</translation>
    </message>
    <message>
        <source>rejected by the server</source>
        <translation>máy chủ từ chối</translation>
    </message>
</context>
</TS>
