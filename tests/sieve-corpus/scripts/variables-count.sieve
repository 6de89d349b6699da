# RFC 5229 string test with RFC 5231 :count (empty strings are not counted).
require ["fileinto", "variables", "relational", "comparator-i;ascii-numeric"];
set "x" "";
if string :count "eq" :comparator "i;ascii-numeric" ["a", "${x}", "b"] "2" { fileinto "count-2"; }
if string :value "gt" :comparator "i;ascii-numeric" "${x}" "5" { fileinto "empty-is-infinity"; }
if header :matches "subject" "*" { if string :value "ge" "${1}" "M" { fileinto "subject-ge-M"; } }
