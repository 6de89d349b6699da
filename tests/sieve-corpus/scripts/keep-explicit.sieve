# Explicit keep, fileinto INBOX and duplicates.
require "fileinto";
keep;
if header :contains "to" "bob" { fileinto "INBOX"; fileinto "dup"; fileinto "dup"; }
if size :over 100K { keep; }
