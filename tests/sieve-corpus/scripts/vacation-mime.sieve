# Vacation with :mime and a period clamped to the site maximum.
require "vacation";
if not exists "list-id" {
  vacation :mime :days 365 :subject "Away" "Content-Type: text/plain; charset=utf-8

Abwesend.";
}
