# RFC 5260 date test with zones.
require ["fileinto", "date", "variables", "relational"];
if date :originalzone :matches "date" "date" "*" { fileinto "orig-date-${0}"; }
if date :originalzone :matches "date" "time" "*" { fileinto "orig-time-${0}"; }
if date :originalzone :matches "date" "zone" "*" { fileinto "orig-zone-${0}"; }
if date :zone "+0000" :matches "date" "iso8601" "*" { fileinto "utc-iso-${0}"; }
if date :zone "-0330" :matches "date" "std11" "*" { fileinto "nf-std11-${0}"; }
if date :zone "+1400" :matches "date" "weekday" "*" { fileinto "kiribati-weekday-${0}"; }
if date :zone "+0000" :matches "date" "julian" "*" { fileinto "julian-${0}"; }
if date :matches "date" "year" "*" { fileinto "local-year-${0}"; }
if date :value "ge" :originalzone "date" "date" "2023-06-01" { fileinto "after-june-2023"; }
if date :is :zone "+0000" "date" "hour" "07" { fileinto "utc-hour-07"; }
if date :matches "received" "month" "*" { fileinto "received-month-${0}"; }
if date :is "x-custom" "year" "2024" { fileinto "unparsable-date"; }
if currentdate :value "ge" "year" "2024" { fileinto "now-after-2024"; }
if currentdate :zone "+0100" :matches "zone" "*" { fileinto "now-zone-${0}"; }
