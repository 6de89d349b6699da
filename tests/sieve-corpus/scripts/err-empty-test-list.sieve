# An empty test list.
require "fileinto";

if allof () { keep; }
