<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="vi_VN" sourcelanguage="en">
<context>
    <name>BatchDialog</name>
    <message>
        <location filename="../operator.py" line="466"/>
        <source>New batch</source>
        <translation>Tạo lô mới</translation>
    </message>
    <message>
        <location filename="../operator.py" line="477"/>
        <source>e.g. MX2611A</source>
        <translation>ví dụ MX2611A</translation>
    </message>
    <message>
        <location filename="../operator.py" line="480"/>
        <source>Type the expiry date</source>
        <translation>Nhập hạn dùng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="492"/>
        <source>not planned</source>
        <translation>chưa định</translation>
    </message>
    <message>
        <location filename="../operator.py" line="497"/>
        <source>Stage</source>
        <translation>Công đoạn</translation>
    </message>
    <message>
        <location filename="../operator.py" line="497"/>
        <source>Date (dd/mm/yyyy)</source>
        <translation>Ngày (nn/tt/nnnn)</translation>
    </message>
    <message>
        <location filename="../operator.py" line="497"/>
        <source>Place</source>
        <translation>Địa điểm</translation>
    </message>
    <message>
        <location filename="../operator.py" line="497"/>
        <source>Note</source>
        <translation>Ghi chú</translation>
    </message>
    <message>
        <location filename="../operator.py" line="501"/>
        <source>Add a stage</source>
        <translation>Thêm công đoạn</translation>
    </message>
    <message>
        <location filename="../operator.py" line="502"/>
        <source>Remove the stage</source>
        <translation>Xóa công đoạn</translation>
    </message>
    <message>
        <location filename="../operator.py" line="509"/>
        <source>Create the batch</source>
        <translation>Tạo lô</translation>
    </message>
    <message>
        <location filename="../operator.py" line="511"/>
        <source>Cancel</source>
        <translation>Hủy bỏ</translation>
    </message>
    <message>
        <location filename="../operator.py" line="520"/>
        <source>Product</source>
        <translation>Sản phẩm</translation>
    </message>
    <message>
        <location filename="../operator.py" line="521"/>
        <source>Lot</source>
        <translation>Số lô</translation>
    </message>
    <message>
        <location filename="../operator.py" line="522"/>
        <source>Production date</source>
        <translation>Ngày sản xuất</translation>
    </message>
    <message>
        <location filename="../operator.py" line="527"/>
        <source>Expiry</source>
        <translation>Hạn sử dụng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="528"/>
        <source>Planned quantity</source>
        <translation>Số lượng kế hoạch</translation>
    </message>
    <message>
        <location filename="../operator.py" line="529"/>
        <source>Origin</source>
        <translation>Xuất xứ</translation>
    </message>
    <message>
        <location filename="../operator.py" line="544"/>
        <source>Production diary</source>
        <translation>Nhật ký sản xuất</translation>
    </message>
    <message numerus="yes">
        <location filename="../operator.py" line="573"/>
        <source>From the shelf life (%n days): </source>
        <translation>
            <numerusform>Theo hạn dùng của sản phẩm (%n ngày): </numerusform>
        </translation>
    </message>
    <message>
        <location filename="../operator.py" line="599"/>
        <source>the expiry date must be after the production date</source>
        <translation>hạn sử dụng phải sau ngày sản xuất</translation>
    </message>
    <message>
        <location filename="../operator.py" line="607"/>
        <source>stage %1 has a date but no name</source>
        <translation>công đoạn %1 có ngày nhưng chưa có tên</translation>
    </message>
    <message>
        <location filename="../operator.py" line="613"/>
        <source>stage %1: the date must be written dd/mm/yyyy</source>
        <translation>công đoạn %1: ngày phải viết dạng nn/tt/nnnn</translation>
    </message>
    <message>
        <location filename="../operator.py" line="626"/>
        <source>Saving…</source>
        <translation>Đang lưu…</translation>
    </message>
</context>
<context>
    <name>CameraView</name>
    <message>
        <location filename="../camera_view.py" line="54"/>
        <source>Waiting for the camera…</source>
        <translation>Đang chờ hình từ camera…</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <location filename="../app.py" line="177"/>
        <source>Packing station %1 / %2</source>
        <translation>Trạm đóng gói %1 / %2</translation>
    </message>
    <message>
        <location filename="../app.py" line="235"/>
        <source>Close</source>
        <translation>Đóng</translation>
    </message>
    <message>
        <location filename="../app.py" line="235"/>
        <source>The line is running. Stop it and close the program?</source>
        <translation>Dây chuyền đang chạy. Dừng dây chuyền và đóng chương trình?</translation>
    </message>
</context>
<context>
    <name>OperatorScreen</name>
    <message>
        <location filename="../operator.py" line="656"/>
        <source>Printed</source>
        <translation>Đã in</translation>
    </message>
    <message>
        <location filename="../operator.py" line="656"/>
        <source>Verified</source>
        <translation>Đã kiểm tra</translation>
    </message>
    <message>
        <location filename="../operator.py" line="656"/>
        <source>Activated</source>
        <translation>Đã kích hoạt</translation>
    </message>
    <message>
        <location filename="../operator.py" line="656"/>
        <source>Voided</source>
        <translation>Đã hủy</translation>
    </message>
    <message>
        <location filename="../operator.py" line="656"/>
        <source>Waiting to be sent</source>
        <translation>Chờ gửi</translation>
    </message>
    <message>
        <location filename="../operator.py" line="656"/>
        <source>Confirmed by the server</source>
        <translation>Máy chủ đã nhận</translation>
    </message>
    <message>
        <location filename="../operator.py" line="700"/>
        <source>New batch</source>
        <translation>Tạo lô mới</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1190"/>
        <source>Close batch</source>
        <translation>Đóng lô</translation>
    </message>
    <message>
        <location filename="../operator.py" line="704"/>
        <source>Technician</source>
        <translation>Kỹ thuật</translation>
    </message>
    <message>
        <location filename="../operator.py" line="706"/>
        <source>Product</source>
        <translation>Sản phẩm</translation>
    </message>
    <message>
        <location filename="../operator.py" line="707"/>
        <source>Batch</source>
        <translation>Lô</translation>
    </message>
    <message>
        <location filename="../operator.py" line="729"/>
        <source>Acknowledge</source>
        <translation>Đã biết</translation>
    </message>
    <message>
        <location filename="../operator.py" line="748"/>
        <source>Start</source>
        <translation>Bắt đầu</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1303"/>
        <source>Pause</source>
        <translation>Tạm dừng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="752"/>
        <source>Stop</source>
        <translation>Dừng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="761"/>
        <source>until stopped</source>
        <translation>đến khi dừng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="767"/>
        <source>Items to pack</source>
        <translation>Số sản phẩm cần đóng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="773"/>
        <source>Rate (items per minute)</source>
        <translation>Tốc độ (sản phẩm/phút)</translation>
    </message>
    <message>
        <location filename="../operator.py" line="790"/>
        <source>This batch</source>
        <translation>Lô này</translation>
    </message>
    <message>
        <location filename="../operator.py" line="791"/>
        <source>This shift</source>
        <translation>Ca này</translation>
    </message>
    <message>
        <location filename="../operator.py" line="813"/>
        <source>Serial</source>
        <translation>Số sê-ri</translation>
    </message>
    <message>
        <location filename="../operator.py" line="813"/>
        <source>Result</source>
        <translation>Kết quả</translation>
    </message>
    <message>
        <location filename="../operator.py" line="813"/>
        <source>Delivery</source>
        <translation>Gửi về máy chủ</translation>
    </message>
    <message>
        <location filename="../operator.py" line="825"/>
        <source>Recent stamps</source>
        <translation>Tem gần đây</translation>
    </message>
    <message>
        <location filename="../operator.py" line="869"/>
        <source>Printer</source>
        <translation>Máy in</translation>
    </message>
    <message>
        <location filename="../operator.py" line="870"/>
        <source>Scanner</source>
        <translation>Máy quét</translation>
    </message>
    <message>
        <location filename="../operator.py" line="871"/>
        <source>MQTT broker</source>
        <translation>Máy chủ MQTT</translation>
    </message>
    <message>
        <location filename="../operator.py" line="872"/>
        <source>Central server</source>
        <translation>Máy chủ trung tâm</translation>
    </message>
    <message>
        <location filename="../operator.py" line="863"/>
        <source>Last stamp</source>
        <translation>Tem vừa in</translation>
    </message>
    <message>
        <location filename="../operator.py" line="936"/>
        <source>Starting the station: opening the database and the devices…</source>
        <translation>Đang khởi động trạm: mở cơ sở dữ liệu và các thiết bị…</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1069"/>
        <source>Station ready.</source>
        <translation>Trạm đã sẵn sàng.</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1113"/>
        <source>The station could not start: %1</source>
        <translation>Trạm không khởi động được: %1</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1190"/>
        <source>Close batch %1? No more stamps can be printed for it.</source>
        <translation>Đóng lô %1? Sau khi đóng sẽ không in thêm tem cho lô này.</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1193"/>
        <source>Close the batch</source>
        <translation>Đóng lô</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1194"/>
        <source>Cancel</source>
        <translation>Hủy bỏ</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1213"/>
        <source>Choose or create a batch first.</source>
        <translation>Hãy chọn hoặc tạo lô trước.</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1252"/>
        <source>Paused by the operator</source>
        <translation>Người vận hành tạm dừng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1303"/>
        <source>Resume</source>
        <translation>Tiếp tục</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1330"/>
        <source>Serial %1</source>
        <translation>Sê-ri %1</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1415"/>
        <source>voided: %1</source>
        <translation>đã hủy: %1</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1339"/>
        <source>Lot %1</source>
        <translation>Lô %1</translation>
    </message>
    <message numerus="yes">
        <location filename="../operator.py" line="1361"/>
        <source>(+%n more)</source>
        <translation>
            <numerusform>(thêm %n cảnh báo)</numerusform>
        </translation>
    </message>
    <message>
        <location filename="../operator.py" line="1373"/>
        <source>Run finished: %1 activated, %2 voided.</source>
        <translation>Đã chạy xong: %1 tem kích hoạt, %2 tem hủy.</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1385"/>
        <source>This shift (since %1)</source>
        <translation>Ca này (từ %1)</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1412"/>
        <source>activated</source>
        <translation>đã kích hoạt</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1473"/>
        <source>ready</source>
        <translation>sẵn sàng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1473"/>
        <source>status not known yet</source>
        <translation>chưa biết trạng thái</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1474"/>
        <source>fault: %1</source>
        <translation>lỗi: %1</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1476"/>
        <source>not answering</source>
        <translation>không trả lời</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1485"/>
        <source>connected</source>
        <translation>đã kết nối</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1485"/>
        <source>not connected</source>
        <translation>chưa kết nối</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1488"/>
        <source>all confirmed</source>
        <translation>đã nhận đủ</translation>
    </message>
    <message numerus="yes">
        <location filename="../operator.py" line="1489"/>
        <source>%n waiting</source>
        <translation>
            <numerusform>%n tem đang chờ</numerusform>
        </translation>
    </message>
    <message>
        <location filename="../operator.py" line="1493"/>
        <source>%1 not confirmed, oldest %2 min</source>
        <translation>%1 tem chưa được nhận, lâu nhất %2 phút</translation>
    </message>
    <message>
        <location filename="../operator.py" line="647"/>
        <source>Roll</source>
        <translation>Cuộn</translation>
    </message>
    <message>
        <location filename="../operator.py" line="647"/>
        <source>State</source>
        <translation>Trạng thái</translation>
    </message>
    <message>
        <location filename="../operator.py" line="647"/>
        <source>Unused</source>
        <translation>Chưa dùng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="647"/>
        <source>Refused</source>
        <translation>Bị từ chối</translation>
    </message>
    <message>
        <location filename="../operator.py" line="847"/>
        <source>Stamp rolls</source>
        <translation>Cuộn tem</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1436"/>
        <source>%1 (%2): activated %3, unused %4, voided %5, refused %6</source>
        <translation>%1 (%2): đã kích hoạt %3, chưa dùng %4, đã hủy %5, bị từ chối %6</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1442"/>
        <source>Rolls %1: activated %2, unused %3, voided %4, refused %5</source>
        <translation>Cuộn tem %1: kích hoạt %2, chưa dùng %3, hủy %4, từ chối %5</translation>
    </message>
    <message>
        <location filename="../operator.py" line="777"/>
        <source>Print stamps here</source>
        <translation>In tem tại đây</translation>
    </message>
    <message>
        <location filename="../operator.py" line="778"/>
        <source>Pre-printed rolls</source>
        <translation>Cuộn tem in sẵn</translation>
    </message>
    <message>
        <location filename="../operator.py" line="782"/>
        <source>Which line Start runs</source>
        <translation>Nút Bắt đầu chạy dây chuyền nào</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1157"/>
        <source>Changing the line: starting the station again…</source>
        <translation>Đang đổi dây chuyền: khởi động lại trạm…</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1274"/>
        <source>The station could not start: see the message below</source>
        <translation>Trạm không khởi động được: xem thông báo bên dưới</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1276"/>
        <source>Starting the station…</source>
        <translation>Đang khởi động trạm…</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1278"/>
        <source>No product: add one to the product list</source>
        <translation>Chưa có sản phẩm: hãy thêm vào danh sách sản phẩm</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1281"/>
        <source>Choose or create a batch (%1)</source>
        <translation>Chọn hoặc tạo lô (%1)</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1283"/>
        <source>Batch %1 is locked: %2</source>
        <translation>Lô %1 đang bị khóa: %2</translation>
    </message>
    <message>
        <location filename="../operator.py" line="1287"/>
        <source>Printer not ready: %1</source>
        <translation>Máy in chưa sẵn sàng: %1</translation>
    </message>
</context>
<context>
    <name>TechnicianScreen</name>
    <message>
        <location filename="../technician.py" line="556"/>
        <source>Broker address</source>
        <translation>Địa chỉ máy chủ MQTT</translation>
    </message>
    <message>
        <location filename="../technician.py" line="118"/>
        <source>TLS files</source>
        <translation>Tệp TLS</translation>
    </message>
    <message>
        <location filename="../technician.py" line="119"/>
        <source>Host name (DNS)</source>
        <translation>Tên máy chủ (DNS)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="120"/>
        <source>Network connection (TCP)</source>
        <translation>Kết nối mạng (TCP)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="121"/>
        <source>TLS handshake</source>
        <translation>Bắt tay TLS</translation>
    </message>
    <message>
        <location filename="../technician.py" line="122"/>
        <source>MQTT login</source>
        <translation>Đăng nhập MQTT</translation>
    </message>
    <message>
        <location filename="../technician.py" line="317"/>
        <source>Technician: enter the PIN</source>
        <translation>Kỹ thuật: nhập mã PIN</translation>
    </message>
    <message>
        <location filename="../technician.py" line="330"/>
        <source>Clear</source>
        <translation>Xóa</translation>
    </message>
    <message>
        <location filename="../technician.py" line="335"/>
        <source>OK</source>
        <translation>Đồng ý</translation>
    </message>
    <message>
        <location filename="../technician.py" line="464"/>
        <source>Back to the line</source>
        <translation>Về màn hình dây chuyền</translation>
    </message>
    <message>
        <location filename="../technician.py" line="401"/>
        <source>Too many wrong PINs: wait %1 s.</source>
        <translation>Nhập sai quá nhiều lần: chờ %1 giây.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="387"/>
        <source>Checking…</source>
        <translation>Đang kiểm tra…</translation>
    </message>
    <message>
        <location filename="../technician.py" line="404"/>
        <source>Wrong PIN.</source>
        <translation>Sai mã PIN.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="447"/>
        <source>Devices</source>
        <translation>Thiết bị</translation>
    </message>
    <message>
        <location filename="../technician.py" line="448"/>
        <source>MQTT</source>
        <translation>MQTT</translation>
    </message>
    <message>
        <location filename="../technician.py" line="449"/>
        <source>Label</source>
        <translation>Mẫu tem</translation>
    </message>
    <message>
        <location filename="../technician.py" line="451"/>
        <source>PIN</source>
        <translation>Mã PIN</translation>
    </message>
    <message>
        <location filename="../technician.py" line="452"/>
        <source>Log</source>
        <translation>Nhật ký</translation>
    </message>
    <message>
        <location filename="../technician.py" line="458"/>
        <source>Save the configuration</source>
        <translation>Lưu cấu hình</translation>
    </message>
    <message>
        <location filename="../technician.py" line="461"/>
        <source>Apply now (restart the devices)</source>
        <translation>Áp dụng ngay (khởi động lại thiết bị)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="483"/>
        <source>Look for ports again</source>
        <translation>Tìm lại cổng</translation>
    </message>
    <message>
        <location filename="../technician.py" line="485"/>
        <source>Use for the scanner</source>
        <translation>Dùng cho máy quét</translation>
    </message>
    <message>
        <location filename="../technician.py" line="487"/>
        <source>Use for the printer</source>
        <translation>Dùng cho máy in</translation>
    </message>
    <message>
        <location filename="../technician.py" line="491"/>
        <source>Test print</source>
        <translation>In thử</translation>
    </message>
    <message>
        <location filename="../technician.py" line="496"/>
        <source>Field</source>
        <translation>Mục</translation>
    </message>
    <message>
        <location filename="../technician.py" line="496"/>
        <source>Value</source>
        <translation>Giá trị</translation>
    </message>
    <message>
        <location filename="../technician.py" line="506"/>
        <source>Serial ports on this machine</source>
        <translation>Các cổng nối tiếp trên máy</translation>
    </message>
    <message>
        <location filename="../technician.py" line="514"/>
        <source>Printer address</source>
        <translation>Địa chỉ máy in</translation>
    </message>
    <message>
        <location filename="../technician.py" line="515"/>
        <source>Scanner address</source>
        <translation>Địa chỉ máy quét</translation>
    </message>
    <message>
        <location filename="../technician.py" line="516"/>
        <source>Printer status (decoded)</source>
        <translation>Trạng thái máy in (đã giải mã)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="523"/>
        <source>What the scanner sends (live)</source>
        <translation>Dữ liệu máy quét gửi (trực tiếp)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="557"/>
        <source>User name</source>
        <translation>Tên đăng nhập</translation>
    </message>
    <message>
        <location filename="../technician.py" line="558"/>
        <source>Password</source>
        <translation>Mật khẩu</translation>
    </message>
    <message>
        <location filename="../technician.py" line="559"/>
        <source>CA certificate</source>
        <translation>Chứng chỉ CA</translation>
    </message>
    <message>
        <location filename="../technician.py" line="559"/>
        <source>Client certificate</source>
        <translation>Chứng chỉ máy trạm</translation>
    </message>
    <message>
        <location filename="../technician.py" line="560"/>
        <source>Client key</source>
        <translation>Khóa máy trạm</translation>
    </message>
    <message>
        <location filename="../technician.py" line="564"/>
        <source>Choose…</source>
        <translation>Chọn…</translation>
    </message>
    <message>
        <location filename="../technician.py" line="568"/>
        <source>Test the connection</source>
        <translation>Kiểm tra kết nối</translation>
    </message>
    <message>
        <location filename="../technician.py" line="584"/>
        <source>Preview</source>
        <translation>Xem trước</translation>
    </message>
    <message>
        <location filename="../technician.py" line="592"/>
        <source>Label template (ZPL)</source>
        <translation>Mẫu tem (ZPL)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="600"/>
        <source>As printed (same renderer as the printer simulator), with the current product and batch:</source>
        <translation>Tem như khi in (cùng bộ dựng hình với máy in mô phỏng), với sản phẩm và lô đang chọn:</translation>
    </message>
    <message>
        <location filename="../technician.py" line="614"/>
        <source>Window</source>
        <translation>Cửa sổ</translation>
    </message>
    <message>
        <location filename="../technician.py" line="615"/>
        <source>Full screen (kiosk)</source>
        <translation>Toàn màn hình (kiosk)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="617"/>
        <source>The operator presses Resume</source>
        <translation>Người vận hành bấm Tiếp tục</translation>
    </message>
    <message>
        <location filename="../technician.py" line="618"/>
        <source>By itself when the printer is ready</source>
        <translation>Tự động khi máy in sẵn sàng</translation>
    </message>
    <message>
        <location filename="../technician.py" line="622"/>
        <source>Language of the screens</source>
        <translation>Ngôn ngữ màn hình</translation>
    </message>
    <message>
        <location filename="../technician.py" line="623"/>
        <source>Display</source>
        <translation>Hiển thị</translation>
    </message>
    <message>
        <location filename="../technician.py" line="624"/>
        <source>After a printer fault the line resumes</source>
        <translation>Sau lỗi máy in, dây chuyền chạy lại</translation>
    </message>
    <message>
        <location filename="../technician.py" line="625"/>
        <source>Verification window (seconds)</source>
        <translation>Thời gian chờ kiểm tra (giây)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="626"/>
        <source>Failed stamps in a row that stop the line</source>
        <translation>Số tem lỗi liên tiếp thì dừng dây chuyền</translation>
    </message>
    <message>
        <location filename="../technician.py" line="637"/>
        <source>Change the PIN</source>
        <translation>Đổi mã PIN</translation>
    </message>
    <message>
        <location filename="../technician.py" line="642"/>
        <source>New PIN (4 to 8 digits)</source>
        <translation>Mã PIN mới (4 đến 8 chữ số)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="643"/>
        <source>New PIN again</source>
        <translation>Nhập lại mã PIN mới</translation>
    </message>
    <message>
        <location filename="../technician.py" line="654"/>
        <source>Time (UTC)</source>
        <translation>Thời gian (UTC)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="654"/>
        <source>Who</source>
        <translation>Ai</translation>
    </message>
    <message>
        <location filename="../technician.py" line="654"/>
        <source>What</source>
        <translation>Việc gì</translation>
    </message>
    <message>
        <location filename="../technician.py" line="654"/>
        <source>Detail</source>
        <translation>Chi tiết</translation>
    </message>
    <message>
        <location filename="../technician.py" line="729"/>
        <source>This configuration was not read from a file: nothing to save.</source>
        <translation>Cấu hình này không đọc từ tệp: không có gì để lưu.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="736"/>
        <source>Checking the new configuration…</source>
        <translation>Đang kiểm tra cấu hình mới…</translation>
    </message>
    <message>
        <location filename="../technician.py" line="752"/>
        <source>Nothing changed.</source>
        <translation>Không có thay đổi.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="755"/>
        <source>Saved: %1. The devices use the new settings after “Apply now” or the next start.</source>
        <translation>Đã lưu: %1. Thiết bị dùng cài đặt mới sau khi bấm “Áp dụng ngay” hoặc lần khởi động sau.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="763"/>
        <source>Not saved, the file is unchanged: %1</source>
        <translation>Chưa lưu, tệp cấu hình giữ nguyên: %1</translation>
    </message>
    <message>
        <location filename="../technician.py" line="775"/>
        <source>Stop the line first, then apply.</source>
        <translation>Hãy dừng dây chuyền trước rồi mới áp dụng.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="778"/>
        <source>Restarting the devices with the new settings…</source>
        <translation>Đang khởi động lại thiết bị với cài đặt mới…</translation>
    </message>
    <message>
        <location filename="../technician.py" line="779"/>
        <source>New settings in use.</source>
        <translation>Đang dùng cài đặt mới.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="790"/>
        <source>(no serial port found)</source>
        <translation>(không tìm thấy cổng nối tiếp nào)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="805"/>
        <source>Stop the line before a test print.</source>
        <translation>Hãy dừng dây chuyền trước khi in thử.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="808"/>
        <source>Printing…</source>
        <translation>Đang in…</translation>
    </message>
    <message>
        <location filename="../technician.py" line="817"/>
        <source>Test label sent to %1.</source>
        <translation>Đã gửi tem in thử tới %1.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="821"/>
        <source>Test print failed: %1</source>
        <translation>In thử không được: %1</translation>
    </message>
    <message>
        <location filename="../technician.py" line="839"/>
        <source>Lines read: %1 · refused: %2</source>
        <translation>Số dòng đọc: %1 · bị loại: %2</translation>
    </message>
    <message>
        <location filename="../technician.py" line="849"/>
        <source>refused (%1)</source>
        <translation>bị loại (%1)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="853"/>
        <source>Choose a file</source>
        <translation>Chọn tệp</translation>
    </message>
    <message>
        <location filename="../technician.py" line="853"/>
        <source>Certificates and keys (*.pem *.crt *.key);;All files (*)</source>
        <translation>Chứng chỉ và khóa (*.pem *.crt *.key);;Mọi tệp (*)</translation>
    </message>
    <message>
        <location filename="../technician.py" line="871"/>
        <source>Testing…</source>
        <translation>Đang thử…</translation>
    </message>
    <message>
        <location filename="../technician.py" line="880"/>
        <source>The broker accepts this station.</source>
        <translation>Máy chủ MQTT chấp nhận trạm này.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="880"/>
        <source>The connection failed at the step marked ✘.</source>
        <translation>Kết nối thất bại ở bước có dấu ✘.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="915"/>
        <source>%1 · %2 × %3 dots</source>
        <translation>%1 · %2 × %3 điểm</translation>
    </message>
    <message>
        <location filename="../technician.py" line="929"/>
        <source>The two PINs differ.</source>
        <translation>Hai mã PIN không giống nhau.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="937"/>
        <source>Saving…</source>
        <translation>Đang lưu…</translation>
    </message>
    <message>
        <location filename="../technician.py" line="946"/>
        <source>PIN changed.</source>
        <translation>Đã đổi mã PIN.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="450"/>
        <source>Line</source>
        <translation>Dây chuyền</translation>
    </message>
    <message>
        <location filename="../technician.py" line="466"/>
        <source>Quit the program</source>
        <translation>Thoát chương trình</translation>
    </message>
    <message>
        <location filename="../technician.py" line="934"/>
        <source>Choose a PIN of 4 to 8 digits, not 0000 and not one digit repeated.</source>
        <translation>Chọn mã PIN 4 đến 8 chữ số, không phải 0000 và không lặp một chữ số.</translation>
    </message>
    <message>
        <location filename="../technician.py" line="536"/>
        <source>Camera view (decoded codes outlined)</source>
        <translation>Hình camera (mã đọc được có khung viền)</translation>
    </message>
</context>
<context>
    <name>Words</name>
    <message>
        <location filename="../operator.py" line="80"/>
        <source>RUNNING</source>
        <translation>ĐANG CHẠY</translation>
    </message>
    <message>
        <location filename="../operator.py" line="81"/>
        <source>PAUSED</source>
        <translation>TẠM DỪNG</translation>
    </message>
    <message>
        <location filename="../operator.py" line="82"/>
        <source>STOPPED</source>
        <translation>ĐÃ DỪNG</translation>
    </message>
    <message>
        <location filename="../operator.py" line="83"/>
        <source>FAULT</source>
        <translation>LỖI</translation>
    </message>
    <message>
        <location filename="../operator.py" line="84"/>
        <source>STOPPING…</source>
        <translation>ĐANG DỪNG…</translation>
    </message>
    <message>
        <location filename="../operator.py" line="94"/>
        <source>not read</source>
        <translation>không đọc được</translation>
    </message>
    <message>
        <location filename="../operator.py" line="95"/>
        <source>wrong content</source>
        <translation>sai nội dung</translation>
    </message>
    <message>
        <location filename="../operator.py" line="96"/>
        <source>unreadable</source>
        <translation>dữ liệu hỏng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="97"/>
        <source>printer fault</source>
        <translation>lỗi máy in</translation>
    </message>
    <message>
        <location filename="../operator.py" line="98"/>
        <source>line stopped</source>
        <translation>dây chuyền dừng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="99"/>
        <source>by hand</source>
        <translation>hủy thủ công</translation>
    </message>
    <message>
        <location filename="../operator.py" line="114"/>
        <source>waiting to be sent</source>
        <translation>chờ gửi</translation>
    </message>
    <message>
        <location filename="../operator.py" line="115"/>
        <source>sent, not yet confirmed</source>
        <translation>đã gửi, chờ xác nhận</translation>
    </message>
    <message>
        <location filename="../operator.py" line="116"/>
        <source>confirmed by the server</source>
        <translation>máy chủ đã nhận</translation>
    </message>
    <message>
        <location filename="../operator.py" line="104"/>
        <source>out of labels</source>
        <translation>hết giấy</translation>
    </message>
    <message>
        <location filename="../operator.py" line="105"/>
        <source>ribbon out</source>
        <translation>hết ruy băng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="106"/>
        <source>head open</source>
        <translation>đầu in mở</translation>
    </message>
    <message>
        <location filename="../operator.py" line="107"/>
        <source>paused on the printer</source>
        <translation>tạm dừng trên máy in</translation>
    </message>
    <message>
        <location filename="../operator.py" line="108"/>
        <source>cutter fault</source>
        <translation>lỗi dao cắt</translation>
    </message>
    <message>
        <location filename="../operator.py" line="109"/>
        <source>too hot</source>
        <translation>quá nóng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="110"/>
        <source>too cold</source>
        <translation>quá lạnh</translation>
    </message>
    <message>
        <location filename="../operator.py" line="111"/>
        <source>buffer full</source>
        <translation>đầy bộ nhớ đệm</translation>
    </message>
    <message>
        <location filename="../operator.py" line="100"/>
        <source>never printed</source>
        <translation>chưa in (trả lại số)</translation>
    </message>
    <message>
        <location filename="../operator.py" line="101"/>
        <source>batch locked</source>
        <translation>lô bị khóa</translation>
    </message>
    <message>
        <location filename="../operator.py" line="119"/>
        <source>in use</source>
        <translation>đang dùng</translation>
    </message>
    <message>
        <location filename="../operator.py" line="120"/>
        <source>locked</source>
        <translation>đang khóa</translation>
    </message>
    <message>
        <location filename="../operator.py" line="121"/>
        <source>voided</source>
        <translation>đã hủy</translation>
    </message>
</context>
</TS>
