# RFC 5229 set, modifiers, string test, expansion.
require ["fileinto", "variables"];
set "a" "Hello World";
set :lower "lower" "${a}";
set :upper "upper" "${a}";
set :lowerfirst "lf" "${a}";
set :upperfirst :lower "uf" "hELLO";
set :length "len" "${a}";
set :quotewildcard "qw" "a*b?c\\d";
set "empty" "";
fileinto "${lower}|${upper}|${lf}|${uf}|${len}|${qw}";
if string :is "${empty}" "" { fileinto "empty-ok"; }
if string :matches "${a}" "H*o W*" { fileinto "m=${1}/${2}"; }
if string :contains ["x", "${upper}"] "WORLD" { fileinto "list-source"; }
set "Mixed_Name" "under";
fileinto "${mixed_name}-${MIXED_NAME}-${unknown}-${bad name}-${1x}-${}";
if header :matches "subject" "*" { set :length "sublen" "${0}"; fileinto "subject-length-${sublen}"; }
set "n" "${hex:41 42}";
fileinto "n=${n}";

