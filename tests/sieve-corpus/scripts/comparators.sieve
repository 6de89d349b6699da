# RFC 4790 comparators through RFC 5228 and RFC 5231.
require ["fileinto", "comparator-i;ascii-numeric", "relational"];
if header :is :comparator "i;ascii-numeric" "x-spam-score" "7" { fileinto "score-is-7"; }
if header :is :comparator "i;ascii-numeric" "x-spam-score" "007" { fileinto "score-is-007"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "9" { fileinto "score-gt-9"; }
if header :value "lt" :comparator "i;ascii-numeric" "x-spam-score" "10" { fileinto "score-lt-10"; }
if header :value "gt" :comparator "i;octet" "x-spam-score" "9" { fileinto "octet-gt-9"; }
if header :value "ge" :comparator "i;ascii-casemap" "subject" "m" { fileinto "subject-ge-m"; }
if header :value "eq" :comparator "i;ascii-numeric" "x-count" "9" { fileinto "count-eq-9"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-count" "100" { fileinto "abc-is-infinity"; }
if header :value "ne" :comparator "i;ascii-numeric" "x-count" "10" { fileinto "count-ne-10"; }
if header :value "le" :comparator "i;ascii-numeric" "x-count" "7" { fileinto "count-le-7"; }
if header :is :comparator "i;octet" "to" "bob@example.com" { fileinto "to-octet"; }
if header :contains :comparator "i;ascii-casemap" "from" "ALICE" { fileinto "from-casemap"; }
