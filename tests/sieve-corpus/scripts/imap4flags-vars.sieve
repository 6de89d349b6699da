# imap4flags with variables: flag variables, hasflag over several, keep picks up later flags.
require ["imap4flags", "variables", "fileinto", "relational", "comparator-i;ascii-numeric"];
set "f1" "\\Seen";
addflag "f1" "\\Flagged junk";
addflag "f2" "$label1";
if hasflag :contains ["f1", "f2"] "label" { fileinto "labelled"; }
if hasflag :count "eq" :comparator "i;ascii-numeric" ["f1", "f2"] "4" { fileinto "four-flags"; }
setflag "${f1}";
removeflag "junk";
keep;
addflag "\\Answered";
