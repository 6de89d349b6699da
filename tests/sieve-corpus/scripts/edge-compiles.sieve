# Edge cases that compile: an unknown date part makes the test false; an
# invalid header name matches nothing; an empty folder name.
require ["date", "fileinto"];
if not date "date" "nosuchpart" "1" { fileinto "date-false"; }
if header :is "Sub ject" "" { fileinto "bad-header"; }
if exists "date" { fileinto ""; }
