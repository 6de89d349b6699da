# The vacation decision with defaults (RFC 5230 section 4.5, RFC 3834).
require "vacation";
vacation :days 1 "I am away.";
