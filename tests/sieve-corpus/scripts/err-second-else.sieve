# A second else.
if true { }
else { keep; }
else { discard; }
