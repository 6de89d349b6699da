# The implicit keep carries the internal flags (RFC 5232 section 3).
require ["imap4flags", "fileinto", "copy"];
addflag "\\Seen";
if address :domain :is "from" "example.com" { addflag "work"; fileinto :copy "work"; }
