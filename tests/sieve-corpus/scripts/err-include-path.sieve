# include refuses path names (RFC 6609 section 3.2).
require ["include"];
include "../etc/passwd";
