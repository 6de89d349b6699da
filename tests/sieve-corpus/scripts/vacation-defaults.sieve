# Vacation with defaults; the handle is derived from the arguments.
require "vacation";
vacation text:
I'm out of the office.
Back soon.
.
;
