# RFC 5230 vacation parameters.
require ["vacation", "variables"];
if header :matches "subject" "*" { set "s" "${1}"; }
vacation :days 3 :subject "Re: ${s}" :from "bob@example.com" :addresses ["bob@example.com", "robert@example.com"] :handle "away-${s}" "I am away until Monday.";
