# A :mime reason and a :handle.
require "vacation";
vacation :mime :handle "h1" "Content-Type: text/plain; charset=utf-8

Abwesend.";
