# Comments, multi-line strings and numbers with units (RFC 5228 section 2).
require ["fileinto"]; /* a bracketed
comment */
if size :under 1M { # hash comment
  fileinto text: # comment after text:
multi
..line
.
;
}
if size :over 4k { fileinto "over-4k"; }
if header :is "subject" "Short" { fileinto "x\"quoted\\"; }
fileinto "esc\aped\"";
