# A missing semicolon.
require "fileinto";
fileinto "a"
fileinto "b";
