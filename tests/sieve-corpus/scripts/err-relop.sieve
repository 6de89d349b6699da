# A relational operator that does not exist.
require ["relational"];
if header :count "xx" "to" "1" { keep; }
