# RFC 5228 envelope test.
require ["fileinto", "envelope", "variables"];
if envelope :is "from" "" { fileinto "null-sender"; }
if envelope :all :matches "from" "*" { fileinto "from=${0}"; }
if envelope :domain :is "from" "example.net" { fileinto "from-example-net"; }
if envelope :localpart :matches "to" "*" { fileinto "to-local=${1}"; }
if envelope :domain :is "to" "EXAMPLE.COM" { fileinto "to-domain"; }
if envelope :contains ["from", "to"] "lists" { fileinto "lists-anywhere"; }
if envelope :is :comparator "i;octet" "to" "bob@example.com" { fileinto "to-octet"; }
