# :matches wildcards: *, ?, escapes, anchoring.
require "fileinto";
if header :matches "subject" "*urgent*" { fileinto "star-urgent"; }
if header :matches "subject" "Meeting*" { fileinto "prefix"; }
if header :matches "subject" "*]" { fileinto "suffix-bracket"; }
if header :matches "subject" "?? alerts" { fileinto "two-chars"; }
if header :matches "subject" "*\\**" { fileinto "literal-star"; }
if header :matches "subject" "*\\?*" { fileinto "literal-question"; }
if header :matches "subject" "*\\\\*" { fileinto "literal-backslash"; }
if header :matches "subject" "" { fileinto "empty-pattern"; }
if header :matches "subject" "*" { fileinto "star-only"; }
if header :matches "from" "*@*.*" { fileinto "shape"; }
if header :matches "subject" "*patch ?/?*" { fileinto "patch-n-of-m"; }
if header :matches :comparator "i;octet" "subject" "*URGENT*" { fileinto "octet-upper"; }
if header :matches :comparator "i;octet" "subject" "*urgent*" { fileinto "octet-lower"; }
if header :matches "x-custom" "second*" { fileinto "second-instance"; }
