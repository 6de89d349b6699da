# :addresses makes team@ count as the user; :subject and :from are used as given.
require "vacation";
vacation :addresses ["team@example.com", "dev@lists.example.org"] :subject "Out of office" :from "bob@example.com" "Away until Monday.";
