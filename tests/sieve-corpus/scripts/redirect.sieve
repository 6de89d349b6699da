# RFC 5228 redirect: duplicates collapse; the implicit keep is cancelled.
if address :domain :is "from" "example.net" {
  redirect "forward@example.org";
  redirect "<forward@example.org>";
  redirect "second@example.org";
}
