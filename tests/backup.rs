//! `tern backup` and `tern restore` through the real binary: a backup taken
//! through the running server's control socket while a sender keeps
//! delivering, restored into a fresh data directory, holds every message
//! acknowledged before the backup began, in its folder, with its UID, its
//! flags and the folder's UIDVALIDITY. Runs on either engine
//! (`TERN_TEST_STORE=postgres`: the restore goes into a fresh database).

mod harness;

use harness::{LoadSender, Tern, config, python_json, wait_for};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

fn server_config() -> String {
    config(
        "mx.example.test",
        "remote.test",
        "[[listen]]\nprotocol = \"imaps\"\naddress = \"{ip}:0\"\n",
    )
}

/// Every folder of far@remote.test: UIDVALIDITY, and per Message-ID the
/// UID and the flags (without \Recent, which is per session).
const STATE: &str = r#"
import imaplib, re
m = imaplib.IMAP4_SSL("127.0.0.1", PORT, ssl_context=CTX)
m.login("far@remote.test", "pw")
folders = {}
for line in m.list()[1]:
    name = line.decode().rsplit(' "/" ', 1)[1].strip('"')
    typ, _ = m.select('"%s"' % name, readonly=True)
    assert typ == "OK", name
    validity = int(m.response("UIDVALIDITY")[1][0])
    flags, ids = {}, {}
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    for item in data:
        if isinstance(item, bytes) and b"UID" in item:
            uid = int(re.search(rb"UID (\d+)", item).group(1))
            f = re.search(rb"FLAGS \(([^)]*)\)", item).group(1).decode().split()
            flags[uid] = sorted(x for x in f if x != "\\Recent")
    typ, data = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0]).group(1))
            ids[uid] = item[1].decode().split(":", 1)[1].strip()
    folders[name] = {"uidvalidity": validity,
                     "messages": {ids[u]: [u, flags.get(u, [])] for u in ids}}
m.logout()
out(folders=folders)
"#;

/// Flags on the first messages of INBOX, and a copy of some in Archive.
const MARK: &str = r#"
import imaplib
m = imaplib.IMAP4_SSL("127.0.0.1", PORT, ssl_context=CTX)
m.login("far@remote.test", "pw")
m.create("Archive")
m.select("INBOX")
assert m.uid("STORE", "1:4", "+FLAGS", "(\\Seen \\Flagged)")[0] == "OK"
assert m.uid("STORE", "3:6", "+FLAGS", "(\\Answered $Label1)")[0] == "OK"
assert m.uid("COPY", "2:5", "Archive")[0] == "OK"
m.select("Archive")
assert m.uid("STORE", "1", "+FLAGS", "(\\Deleted \\Draft)")[0] == "OK"
m.logout()
out(ok=True)
"#;

fn state(tern: &Tern) -> serde_json::Map<String, Value> {
    let port = tern.port_arg("imaps");
    match python_json(STATE, &[&port]).get("folders") {
        Some(Value::Object(f)) => f.clone(),
        other => panic!("no folders: {other:?}"),
    }
}

#[test]
fn a_backup_under_load_restores_every_acknowledged_message_with_uids_and_flags() {
    let mut tern = Tern::start(&server_config());
    tern.add_user("far@remote.test", "pw");
    let mut sender = LoadSender::start(tern.port("smtp"), 2);
    let bound = Duration::from_secs(120);
    wait_for("ten acknowledged messages", bound, || {
        (sender.acked().len() >= 10).then_some(())
    });
    python_json(MARK, &[&tern.port_arg("imaps")]);
    let work = tempfile::tempdir().expect("tempdir");
    let backup_dir = work.path().join("backup");
    let backup_arg = backup_dir.to_str().expect("path");
    // Everything acknowledged before the backup began; more keeps coming.
    let before: HashSet<String> = sender.acked();
    let report = tern.cli_ok(&["backup", backup_arg]);
    assert!(report.contains("backed up the store"), "{report}");
    // The running server made the snapshot (logged once it has sent it).
    wait_for("the server's backup log line", bound, || {
        tern.log()
            .contains("backup: snapshot sent over the control socket")
            .then_some(())
    });
    let during = sender.acked().len();
    wait_for("mail after the backup", bound, || {
        (sender.acked().len() > during).then_some(())
    });
    sender.stop();
    // A second backup into the same folder is refused.
    let again = tern.cli(&["backup", backup_arg], "");
    assert!(!again.status.success(), "a backup over a backup");
    let original = state(&tern);

    // Restoring over a store in use, or one that holds data, is refused.
    let refused = tern.cli(&["restore", backup_arg], "");
    assert!(!refused.status.success(), "restore while the server runs");
    tern.stop();
    // With the server stopped the command reads the store itself.
    let offline = work.path().join("offline");
    let report = tern.cli_ok(&["backup", offline.to_str().expect("path")]);
    assert!(
        report.contains("backed up the store") && offline.join("manifest.json").exists(),
        "{report}"
    );
    let refused = tern.cli(&["restore", backup_arg], "");
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("not empty"),
        "restore into a store with data: {why}"
    );

    let mut fresh = Tern::new(&server_config());
    let report = fresh.cli_ok(&["restore", backup_arg]);
    assert!(report.contains("(verified)"), "{report}");
    fresh.spawn();
    let restored = state(&fresh);

    let inbox = &restored["INBOX"]["messages"];
    for id in &before {
        assert!(
            inbox.get(id).is_some(),
            "{id}, acknowledged before the backup, is missing after the restore"
        );
    }
    for (name, folder) in &restored {
        let was = &original[name];
        assert_eq!(
            folder["uidvalidity"], was["uidvalidity"],
            "UIDVALIDITY of {name}"
        );
        let Value::Object(messages) = &folder["messages"] else {
            panic!("{name}: {folder}");
        };
        for (id, uid_flags) in messages {
            assert_eq!(
                Some(uid_flags),
                was["messages"].get(id),
                "{name} {id}: UID and flags as on the original server"
            );
        }
    }
    let archive = restored["Archive"]["messages"]
        .as_object()
        .expect("Archive");
    assert_eq!(archive.len(), 4, "the copies in Archive: {archive:?}");
    let flagged = restored["INBOX"]["messages"]
        .as_object()
        .expect("INBOX")
        .values()
        .filter(|v| v[1].to_string().contains("Flagged"))
        .count();
    assert_eq!(flagged, 4, "\\Flagged on four messages");
    let archived: Vec<&Value> = archive.values().map(|v| &v[1]).collect();
    for flags in [
        serde_json::json!(["\\Deleted", "\\Draft", "\\Flagged", "\\Seen"]),
        serde_json::json!(["$Label1", "\\Answered", "\\Flagged", "\\Seen"]),
    ] {
        assert!(
            archived.contains(&&flags),
            "{flags} in Archive: {archived:?}"
        );
    }
    // Mail arrives on the restored server with UIDs after the restored ones.
    let largest = inbox
        .as_object()
        .expect("INBOX")
        .values()
        .filter_map(|v| v[0].as_u64())
        .max()
        .unwrap_or(0);
    python_json(
        r#"
s = smtplib.SMTP("127.0.0.1", PORT, timeout=60)
s.sendmail("lisa@outside.test", ["far@remote.test"],
           "From: lisa@outside.test\r\nMessage-ID: <after-restore@test>\r\n\r\nhi\r\n")
s.quit()
out(ok=True)
"#,
        &[&fresh.port_arg("smtp")],
    );
    let after = state(&fresh);
    let new_uid = after["INBOX"]["messages"]["<after-restore@test>"][0]
        .as_u64()
        .expect("the new message");
    assert!(
        new_uid > largest,
        "the new UID {new_uid} follows the restored ones (largest {largest})"
    );
    fresh.stop();
}
