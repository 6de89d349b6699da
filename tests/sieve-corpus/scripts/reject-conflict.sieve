# reject conflicts with fileinto (RFC 5429 section 2.1): a run-time error, so the implicit keep.
require ["reject", "fileinto"];
if header :contains "subject" "report" { fileinto "reports"; reject "no"; }
if header :contains "subject" "group" { reject "no groups"; discard; }
