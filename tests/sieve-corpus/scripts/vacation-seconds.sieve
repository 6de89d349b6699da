# RFC 6131 :seconds (clamped to the site minimum of one day).
require ["vacation-seconds", "fileinto"];
if header :contains "from" "alice" { vacation :seconds 3600 "short"; }
elsif header :contains "subject" "offers" { vacation :seconds 200000 :subject "two days" "long"; }
else { fileinto "no-vacation"; }
