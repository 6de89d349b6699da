# not takes one test, not a list.
if header :contains "subject" "x" { keep; }
elsif not (true, false) { keep; }
