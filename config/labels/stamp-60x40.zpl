^XA
^FX Traceability stamp 60 x 40 mm at 203 dpi, 8 dots per mm. Placeholders stand only in FH-escaped fields.
^FX The builder escapes every value as hex and leaves out a line whose value is missing.
^CI28
^PW480
^LL320
^LH0,0
^FO16,16^BQN,2,4^FH_^FDMA,${qr}^FS
^FO186,14^A0N,26,26^FB286,2,0,L^FH_^FD${product_name}^FS
^FO186,72^A0N,18,18^FB286,2,0,L^FH_^FD${producer}^FS
^FO186,118^A0N,22,22^FH_^FDLô/Lot: ${lot}^FS
^FO186,146^A0N,22,22^FH_^FDNSX: ${production_date}^FS
^FO186,174^A0N,22,22^FH_^FDHSD: ${expiry_date}^FS
^FO240,214^A0N,22,22^FH_^FDSố/No: ${serial}^FS
^FO28,200^BY2^BEN,70,Y,N^FH_^FD${gtin12}^FS
^XZ
