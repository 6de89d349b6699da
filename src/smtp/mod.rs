//! The inbound SMTP server (RFC 5321): the session state machine, the command
//! parser, replies, and one file per phase of the dialogue.

pub mod reply;
