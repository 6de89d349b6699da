# RFC 5231 :count and :value.
require ["fileinto", "relational", "comparator-i;ascii-numeric"];
if header :count "ge" :comparator "i;ascii-numeric" "received" "5" { fileinto "received-ge-5"; }
if header :count "eq" :comparator "i;ascii-numeric" "received" "2" { fileinto "received-eq-2"; }
if header :count "eq" :comparator "i;ascii-numeric" "received" "0" { fileinto "received-none"; }
if address :count "eq" :comparator "i;ascii-numeric" "to" "3" { fileinto "to-three"; }
if address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "2" { fileinto "to-cc-gt-2"; }
if header :count "eq" :comparator "i;ascii-numeric" ["x-count", "x-custom"] "4" { fileinto "two-names-4"; }
if header :count "lt" :comparator "i;ascii-numeric" "x-custom" ["1", "3"] { fileinto "custom-lt-1-or-3"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-count" ["8", "1000"] { fileinto "value-list"; }
if address :count "eq" :comparator "i;ascii-numeric" "cc" "0" { fileinto "cc-count-0"; }
