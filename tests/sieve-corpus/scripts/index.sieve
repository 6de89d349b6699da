# RFC 5260 :index and :last.
require ["fileinto", "index", "date", "variables"];
if header :index 1 :matches "received" "from * by *;*" { fileinto "first-from-${1}"; }
if header :index 2 :last :matches "received" "from * by *;*" { fileinto "second-last-from-${1}"; }
if header :index 9 :contains "received" "" { fileinto "ninth"; }
if header :index 2 :is "x-custom" "second value" { fileinto "custom-2"; }
if header :index 1 :last :is "x-count" "007" { fileinto "last-count"; }
if address :index 1 :matches "to" "*" { fileinto "to-1-${0}"; }
if date :index 1 :last :zone "+0000" :matches "received" "time" "*" { fileinto "last-received-${0}"; }
