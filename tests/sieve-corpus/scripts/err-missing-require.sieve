# fileinto without require "fileinto".
if header :contains "subject" "x" {
  keep;
}
fileinto "folder";
