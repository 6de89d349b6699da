# RFC 5228 header, exists, size, true/false/not/allof/anyof.
require "fileinto";
if header :is "Subject" "Meeting tomorrow [urgent]" { fileinto "is-exact"; }
if header :is "subject" "meeting TOMORROW [urgent]" { fileinto "is-casemap"; }
if header :contains "subject" "URGENT" { fileinto "contains"; }
if header :contains ["X-Nothing", "From"] ["example.net", "nomatch"] { fileinto "contains-list"; }
if header :contains "x-empty" "" { fileinto "empty-contains"; }
if header :is "x-empty" "" { fileinto "empty-is"; }
if exists "X-Priority" { fileinto "has-priority"; }
if exists ["From", "To", "Subject"] { fileinto "has-all"; }
if not exists "Subject" { fileinto "no-subject"; }
if size :over 1K { fileinto "over-1k"; }
if size :under 300 { fileinto "under-300"; }
if allof (header :contains "from" "example", not header :contains "subject" "offers") { fileinto "allof"; }
if anyof (false, header :is "x-custom" "second value") { fileinto "anyof"; }
if allof (true, anyof(false, not false)) { fileinto "nested"; }
if header :contains "subject" "" { fileinto "any-subject"; }
