^XA
^FX Traceability stamp 60 x 40 mm at 203 dpi, 8 dots per mm. Placeholders stand only in FH-escaped fields.
^FX The builder escapes every value as hex and leaves out a line whose value is missing.
^FX Every text field prints with E:VNSANS.TTF, the TrueType font the station downloads to the printer
^FX (devices.printer.fonts): the resident font 0 has no glyphs for most Vietnamese letters and prints boxes.
^FX QR area 0,0,212,212 (x,y,width,height in dots): the Digital Link QR and its quiet zone of 4 modules must fit
^FX in it. At magnification 4 (0.5 mm modules, the smallest GS1 allows at 8 dots/mm is 0.396) that is version 7,
^FX 122 bytes at error correction M; the station refuses a batch whose longest Digital Link would not fit.
^FX Text room: the station measures every text field in the font it downloads and refuses a batch whose name,
^FX producer, lot or widest serial would run past ^PW or the lines of its ^FB block. The lot has two lines, so a
^FX GS1 lot of 20 characters prints whole; _C2_A0 (no-break space) keeps "Lô/Lot:" on the lot's first line.
^CI28
^PW480
^LL320
^LH0,0
^FO16,16^BQN,2,4^FH_^FDMA,${qr}^FS
^FO216,14^A@N,26,26,E:VNSANS.TTF^FB256,2,0,L^FH_^FD${product_name}^FS
^FO216,72^A@N,18,18,E:VNSANS.TTF^FB256,2,0,L^FH_^FD${producer}^FS
^FO216,116^A@N,22,22,E:VNSANS.TTF^FB264,2,0,L^FH_^FDLô/Lot:_C2_A0${lot}^FS
^FO216,164^A@N,22,22,E:VNSANS.TTF^FH_^FDNSX: ${production_date}^FS
^FO216,190^A@N,22,22,E:VNSANS.TTF^FH_^FDHSD: ${expiry_date}^FS
^FO224,222^A@N,22,18,E:VNSANS.TTF^FH_^FDSố/No: ${serial}^FS
^FO28,216^BY2^BEN,68,Y,N^FH_^FD${gtin12}^FS
^XZ
