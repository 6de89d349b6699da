# An unknown command is an error at its line.
require "fileinto";
if true {
  frobnicate "x";
}
