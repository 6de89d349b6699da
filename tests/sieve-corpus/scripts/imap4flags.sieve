# RFC 5232 flags on keep, fileinto and the implicit keep.
require ["fileinto", "imap4flags", "variables"];
setflag "\\Seen";
addflag ["\\Flagged", "$Work"];
if header :contains "subject" "urgent" { addflag "\\Answered \\Draft"; }
removeflag "\\Draft";
if hasflag :contains "work" { fileinto "has-work"; }
if hasflag :is "\\seen" { fileinto "has-seen"; }
if hasflag :matches "*work" { fileinto "work-suffix"; }
fileinto :flags "Custom \\Deleted" "explicit";
set "myflags" "a";
addflag "myflags" ["b", "A"];
if hasflag "myflags" "b" { fileinto "var-has-b"; }
fileinto :flags "${myflags}" "from-var";
keep :flags "\\Important";
