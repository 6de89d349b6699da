//! The production config `tern init` writes: real ports on every address,
//! the certificate under the config folder, the DKIM key, postmaster and
//! abuse aliases, and the account to run as.

use std::path::Path;

/// What goes into the file.
pub struct Settings<'a> {
    pub domain: &'a str,
    pub hostname: &'a str,
    pub data_dir: &'a Path,
    pub run_as: Option<&'a str>,
    pub first_account: &'a str,
    pub certificate: &'a Path,
    pub private_key: &'a Path,
    pub dkim_selector: &'a str,
    pub dkim_key: &'a Path,
}

/// TOML string (quotes and backslashes escaped).
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn path(p: &Path) -> String {
    quoted(&p.display().to_string())
}

/// The listeners of a production server: the IANA ports on every IPv4
/// address (`[::]` instead serves IPv4 and IPv6 on a dual-stack host).
pub const LISTENERS: [(&str, u16); 8] = [
    ("smtp", 25),
    ("submissions", 465),
    ("submission", 587),
    ("imaps", 993),
    ("imap", 143),
    ("pop3s", 995),
    ("pop3", 110),
    ("https", 443),
];

pub fn render(s: &Settings) -> String {
    let mut out = format!(
        "# Tern for {domain}, written by `tern init`. Every key is explained in the\n\
         # annotated reference (config/tern.toml in the sources); `tern check-config`\n\
         # validates this file, `tern doctor` what the world sees of it.\n\n",
        domain = s.domain
    );
    if let Some(user) = s.run_as {
        out.push_str(&format!(
            "# Started as root, tern serve binds the ports below, then runs as this account.\n\
             user = {}\n",
            quoted(user)
        ));
    }
    out.push_str(&format!(
        "hostname = {}                # MX target, PTR name, certificate name\n\
         data_dir = {}\n\
         local_domains = [{}]\n\n\
         [aliases]                              # RFC 5321 and RFC 2142 want these to reach a person\n\
         {} = [{}]\n\
         {} = [{}]\n\n",
        quoted(s.hostname),
        path(s.data_dir),
        quoted(s.domain),
        quoted(&format!("postmaster@{}", s.domain)),
        quoted(s.first_account),
        quoted(&format!("abuse@{}", s.domain)),
        quoted(s.first_account),
    ));
    out.push_str(
        "# Port 25 for other MTAs; 465/587 for mail programs sending (AUTH after TLS);\n\
         # IMAP and POP3 for reading; 443 for web mail (and the port browsers use\n\
         # without being told). Use \"[::]:PORT\" to serve IPv6 too (dual-stack).\n",
    );
    for (protocol, port) in LISTENERS {
        out.push_str(&format!(
            "[[listen]]\nprotocol = \"{protocol}\"\naddress = \"0.0.0.0:{port}\"\n"
        ));
    }
    out.push_str(&format!(
        "\n# A self-signed placeholder until you put a CA-signed certificate (Let's\n\
         # Encrypt: certbot certonly --standalone -d {host}) in these two files\n\
         # and run `systemctl reload tern`; `tern doctor` says when it is right.\n\
         [tls]\n\
         certificate = {}\n\
         private_key = {}\n\n\
         [checks]\n\
         sender_domain_must_resolve = true\n\n\
         # Outgoing mail is signed with this key; its record is printed by tern init\n\
         # (and by tern doctor while it is not published).\n\
         [[dkim]]\n\
         domain = {}\n\
         selector = {}\n\
         private_key = {}\n\
         algorithm = \"rsa-sha256\"\n",
        path(s.certificate),
        path(s.private_key),
        quoted(s.domain),
        quoted(s.dkim_selector),
        path(s.dkim_key),
        host = s.hostname,
    ));
    out
}
