//! ARC (RFC 8617) chain validation: `none` without ARC sets, else the
//! result of validating every instance.

use mail_auth::{ArcOutput, AuthenticatedMessage, MessageAuthenticator};

pub(super) async fn check<'x>(
    a: &MessageAuthenticator,
    msg: &'x AuthenticatedMessage<'x>,
) -> ArcOutput<'x> {
    a.verify_arc(msg).await
}
