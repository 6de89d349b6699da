require ["fileinto"];
if exists "list-id" { fileinto "stopped"; stop; }
