# RFC 5228 section 2.4.2.4 encoded-character.
require ["fileinto", "encoded-character"];
if header :contains "subject" "${hex:75 72 67 65 6e 74}" { fileinto "hex-urgent"; }
if header :contains "subject" "${unicode:00DC}bel" { fileinto "unicode-uebel"; }
if header :contains "subject" "Gr${hex:C3 BC}${unicode:df}e" { fileinto "mixed-gruesse"; }
fileinto "lit-${hex:zz}-${hex:123}-${unicode:}-${HEX: 41}-${Unicode:0041 00e9}";
