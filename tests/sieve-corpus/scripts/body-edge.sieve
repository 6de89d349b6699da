# body across MIME structure; :count on body parts is not allowed, so :matches.
require ["fileinto", "body", "variables"];
if body :content "multipart" :contains "prologue" { fileinto "multipart-prologue"; }
if body :content "text/plain" :matches "*Confidential*" { fileinto "confidential"; }
if body :content ["text/html", "text/calendar"] :contains "garden" { fileinto "html-garden"; }
if body :raw :matches "*--outer--*" { fileinto "raw-end-boundary"; }
if body :text :matches "*unsubscribe*" { fileinto "text-unsubscribe"; }
if body :content "" :contains "VCALENDAR" { fileinto "empty-type-all"; }
if body :content "TEXT/PLAIN" :contains "Hi Bob" { fileinto "uppercase-type"; }
