# RFC 6609 :global include (the comparison serves personal and global
# scripts from the same folder) and return from the main script.
require ["include", "fileinto", "variables"];
include :global "stopper";
if header :contains "subject" "report" { fileinto "before-return"; return; }
fileinto "after-include";
