require ["include", "variables", "fileinto"];
global "tag";
fileinto "inc-${tag}";
set "tag" "${tag}+inc";
if header :contains "subject" "urgent" { return; }
fileinto "inc-not-urgent";
