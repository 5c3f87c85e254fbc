^XA
^FX Traceability stamp 60 x 40 mm at 203 dpi, 8 dots per mm. Placeholders stand only in FH-escaped fields.
^FX The builder escapes every value as hex and leaves out a line whose value is missing.
^FX Every text field prints with E:VNSANS.TTF, the TrueType font the station downloads to the printer
^FX (devices.printer.fonts): the resident font 0 has no glyphs for most Vietnamese letters and prints boxes.
^CI28
^PW480
^LL320
^LH0,0
^FO16,16^BQN,2,4^FH_^FDMA,${qr}^FS
^FO186,14^A@N,26,26,E:VNSANS.TTF^FB286,2,0,L^FH_^FD${product_name}^FS
^FO186,72^A@N,18,18,E:VNSANS.TTF^FB286,2,0,L^FH_^FD${producer}^FS
^FO186,118^A@N,22,22,E:VNSANS.TTF^FH_^FDLô/Lot: ${lot}^FS
^FO186,146^A@N,22,22,E:VNSANS.TTF^FH_^FDNSX: ${production_date}^FS
^FO186,174^A@N,22,22,E:VNSANS.TTF^FH_^FDHSD: ${expiry_date}^FS
^FO240,214^A@N,22,22,E:VNSANS.TTF^FH_^FDSố/No: ${serial}^FS
^FO28,200^BY2^BEN,70,Y,N^FH_^FD${gtin12}^FS
^XZ
