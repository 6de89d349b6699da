# RFC 5490 :create.
require ["fileinto", "mailbox", "imap4flags"];
fileinto :create :flags "\\Seen" "Created/Sub";
