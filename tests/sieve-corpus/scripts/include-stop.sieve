# stop in an included script ends everything; return only the included one.
require ["include", "fileinto"];
include "stopper";
fileinto "not-reached-if-stopped";
