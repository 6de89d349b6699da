# :matches captures become ${1}..${9}; ${0} is the whole value.
require ["fileinto", "variables"];
if header :matches "subject" "*" { set "subj" "${0}"; }
if header :matches "from" "*<*@*>*" { fileinto "name=${1}|local=${2}|domain=${3}|rest=${4}"; }
elsif header :matches "from" "*@*" { fileinto "bare=${1}|${2}"; }
if header :matches "subject" "* *" { fileinto "first-word=${1}"; }
if header :matches "subject" "*?*" { fileinto "q=${1}|${2}|${3}"; }
if header :matches "date" "*, * * * *:*:* *" { fileinto "date=${2}-${3}-${4} ${5}h zone ${8}"; }
if header :matches "subject" "nomatch*" { set "subj" "changed"; }
fileinto "subject-${subj}";
if header :matches "message-id" "<*@*>" { fileinto "mid-${2}"; }
