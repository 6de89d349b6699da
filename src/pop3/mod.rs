//! The POP3 server (RFC 1939, 2449, 2595, 5034).

use crate::net::Connection;
use crate::server::ServerContext;
use crate::shutdown::Shutdown;
use std::sync::Arc;

pub async fn run(mut conn: Connection, _ctx: Arc<ServerContext>, _shutdown: Shutdown) {
    let _ = conn.write_all(b"-ERR [SYS/TEMP] not ready\r\n").await;
}
