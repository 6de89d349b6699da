# RFC 5490 mailboxexists (the comparison's store holds only INBOX).
require ["fileinto", "mailbox"];
if mailboxexists "INBOX" { fileinto "inbox-exists"; }
if mailboxexists ["INBOX", "Archive/2023"] { fileinto "both-exist"; }
if not mailboxexists "Archive/2023" { fileinto :create "Archive/2023"; }
