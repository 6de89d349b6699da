# Which value and key set the match variables when several could (values in
# order, each against the keys in order), and that a failed match keeps them.
require ["fileinto", "variables"];
if header :matches ["to", "from", "subject"] ["*example.com*", "*@*"] { fileinto "first=${0}|${1}|${2}"; }
if header :matches "subject" "no such*" { fileinto "never"; }
fileinto "kept=${1}";
if address :matches :localpart ["cc", "to"] ["*+*", "*"] { fileinto "local=${1}|${2}"; }
if envelope :matches "to" "*+*@*" { fileinto "env=${1}|${2}|${3}"; }
if header :matches "subject" "*?*?*?*?*?*?*?*?*?*?*" { fileinto "ten=${9}${10}"; }
if header :matches "x-spam-score" "?" { fileinto "single-char=${1}"; }
