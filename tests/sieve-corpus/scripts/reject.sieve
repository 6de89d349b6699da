# RFC 5429 reject.
require ["reject", "variables", "encoded-character"];
if header :matches "subject" "*alerts*" { reject "No alerts please: ${1}"; }
if address :is "from" "someone@nowhere.example" { reject text:
We do not accept
mail from ${hex:6e}owhere.
..dotted line
.
; }
