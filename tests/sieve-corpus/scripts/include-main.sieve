# RFC 6609 include with a global variable, :once and :optional.
require ["include", "variables", "fileinto"];
global "tag";
set "tag" "main";
include :personal "tagger";
include :personal :once "tagger";
include :optional "does-not-exist";
fileinto "after-${tag}";
