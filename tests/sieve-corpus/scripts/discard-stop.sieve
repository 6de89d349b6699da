# discard cancels the implicit keep; stop ends the script.
require "fileinto";
if header :contains "subject" "offers" { discard; stop; }
if exists "list-id" { fileinto "lists"; stop; }
if header :contains "from" "daemon" { discard; }
fileinto "after";
