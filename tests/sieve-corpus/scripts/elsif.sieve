# if / elsif / else chains.
require "fileinto";
if header :contains "subject" "offers" { fileinto "shopping"; }
elsif header :contains "subject" "report" { fileinto "work"; }
elsif anyof (exists "list-id", header :contains "precedence" "bulk") { fileinto "lists"; }
elsif address :is "from" "alice+news@example.net" { fileinto "alice"; }
else { fileinto "other"; }
