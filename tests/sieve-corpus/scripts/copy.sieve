# RFC 3894 :copy keeps the implicit keep.
require ["fileinto", "copy"];
fileinto :copy "archive";
if header :contains "subject" "urgent" { redirect :copy "pager@example.org"; }
if header :contains "from" "news" { redirect "news-reader@example.org"; }
