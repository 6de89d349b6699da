# :regex (draft-ietf-sieve-regex) with captures; simple ERE that POSIX and Rust agree on.
require ["fileinto", "regex", "variables"];
if header :regex "subject" "^\\[([a-z]+)\\] Patch ([0-9]+)/([0-9]+)" { fileinto "list-${1}-${2}-of-${3}"; }
if header :regex "subject" "[0-9]+ alerts" { fileinto "alerts"; }
if address :regex :domain "from" "^example\\.(net|com)$" { fileinto "example-${1}"; }
if header :regex :comparator "i;octet" "subject" "URGENT" { fileinto "octet-URGENT"; }
if header :regex "subject" "URGENT" { fileinto "casemap-URGENT"; }
