# :count with a match type that excludes it.
require ["relational", "fileinto"];
if header :count "eq" :is "to" "1" { fileinto "x"; }
