# RFC 5233 :user and :detail.
require ["fileinto", "subaddress", "envelope", "variables"];
if envelope :detail "to" "*" { fileinto "env-detail-${0}"; }
if envelope :user :is "to" "bob" { fileinto "env-user-bob"; }
if envelope :detail :is "to" "" { fileinto "env-detail-empty"; }
if address :detail :matches "from" "*" { fileinto "from-detail-${0}"; }
if address :user :is "from" "alice" { fileinto "from-user-alice"; }
if address :detail :is "to" "lists" { fileinto "to-detail-lists"; }
if address :user :is "to" "ben" { fileinto "to-user-ben"; }
if not address :detail :matches "from" "*" { fileinto "from-no-detail"; }
