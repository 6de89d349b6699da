# RFC 5173 body with :text, :raw and :content.
require ["fileinto", "body"];
if body :contains "garden" { fileinto "text-garden"; }
if body :text :contains "<b>" { fileinto "text-html-tag"; }
if body :raw :contains "=C3=B6" { fileinto "raw-qp"; }
if body :raw :contains "prologue" { fileinto "raw-prologue"; }
if body :content "text/html" :contains "<b>50%</b>" { fileinto "html-part"; }
if body :content "text/plain" :contains "unsubscribe" { fileinto "plain-joined-qp"; }
if body :content "text" :contains "Quarterly review" { fileinto "any-text-part"; }
if body :content "application/pdf" :contains "PDF" { fileinto "pdf-decoded"; }
if body :contains "Schöne Grüße" { fileinto "decoded-utf8"; }
if body :matches "*END marker*" { fileinto "end-marker"; }
if body :content "text/calendar" :contains "VCALENDAR" { fileinto "calendar"; }
if body :raw :contains "JVBERi0x" { fileinto "raw-base64"; }
if body :text :contains "keyword-secret" { fileinto "keyword"; }
