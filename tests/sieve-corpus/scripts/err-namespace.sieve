# RFC 5229 section 3: setting a variable in a namespace this implementation lacks is an error.
require ["variables", "fileinto"];
set "x" "1";
fileinto "${x}-${unknown.space}";
set "unknown.space" "2";
