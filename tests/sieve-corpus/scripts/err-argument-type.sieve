# Wrong argument types: a number where a string list belongs.
require "fileinto";

if header :is "subject" 42 { keep; }
