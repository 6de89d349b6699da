# RFC 5228 section 2.4.2.4: a code point beyond U+10FFFF is a compile error.
require ["fileinto", "encoded-character"];

fileinto "${unicode:110000}";
