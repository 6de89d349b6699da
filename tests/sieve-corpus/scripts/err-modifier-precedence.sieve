# Two modifiers of one precedence (RFC 5229 section 4.1).
require ["variables"];
set :lower :upper "a" "b";
