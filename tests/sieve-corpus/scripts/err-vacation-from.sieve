# Syntax errors Pigeonhole and tern-sieve must place on the same line.
require ["vacation", "relational", "variables", "include"];
if true {
  keep;
}
vacation :from "not an address" "x";
