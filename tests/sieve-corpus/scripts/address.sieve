# RFC 5228 address test with address parts.
require "fileinto";
if address :is "from" "alice+news@example.net" { fileinto "from-all-casemap"; }
if address :is :comparator "i;octet" "from" "alice+news@example.net" { fileinto "from-all-octet"; }
if address :localpart :is "from" "alice+news" { fileinto "from-local"; }
if address :domain :is "from" "EXAMPLE.net" { fileinto "from-domain"; }
if address :domain :is ["to", "cc"] "example.org" { fileinto "to-cc-example-org"; }
if address :all :contains "cc" "carol" { fileinto "cc-carol"; }
if address :matches "to" "bob*@example.com" { fileinto "to-bob"; }
if address :localpart :matches "to" "*+*" { fileinto "to-has-plus"; }
if address :is "reply-to" "replies@example.net" { fileinto "reply-to"; }
if address :domain :is "to" "example.com" { fileinto "to-example-com"; }
if address :is "cc" "" { fileinto "cc-empty"; }
if address :contains ["from","sender"] "lists" { fileinto "from-or-sender-lists"; }
if address :domain :is "from" "mx.example.com" { fileinto "daemon-domain"; }
if address :localpart :is "from" "mailer-daemon" { fileinto "daemon-local"; }
