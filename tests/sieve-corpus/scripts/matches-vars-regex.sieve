# :regex captures, alternation and anchors (Pigeonhole lacks the draft's :quoteregex, so it is not here).
require ["fileinto", "variables", "regex"];
if header :regex "from" "([a-z.+]+)@([a-z.]+)" { fileinto "addr=${1} at ${2}"; }
if header :regex "date" "^([A-Za-z]{3}), +([0-9]+)" { fileinto "day=${1} ${2}"; }
if header :regex "subject" "^(Re|Fwd): " { fileinto "reply"; } else { fileinto "not-reply"; }
if header :regex "message-id" "^<[^@]+@(example\\.(com|net))>$" { fileinto "mid-${1}-${2}"; }
