# Wildcards and comparators on non-ASCII text (decoded RFC 2047 headers):
# "?" is one character, i;ascii-casemap folds ASCII letters only. (A key
# ending in a lone backslash, "*\\", is left out: it makes sieve-test 0.5.19
# abort on an assertion in mcht-matches.c.)
require ["fileinto", "variables"];
if header :matches "subject" "Gr??e*" { fileinto "two-chars=${1}${2}"; }
if header :matches "subject" "Gr?ße*" { fileinto "one-char=${1}"; }
if header :contains "subject" "GRÜSSE" { fileinto "unicode-fold"; }
if header :contains "subject" "grüße" { fileinto "ascii-fold"; }
if header :matches "subject" "**ln*" { fileinto "double-star=${1}|${2}|${3}"; }
if header :matches "subject" "*?" { fileinto "star-q=${2}"; }
if header :matches :comparator "i;octet" "from" "*Ö*" { fileinto "octet-o-umlaut"; }
if header :matches :comparator "i;octet" "from" "*ö*" { fileinto "octet-o-small=${1}"; }
if address :matches :localpart "to" "?ob*" { fileinto "to-q=${1}"; }
