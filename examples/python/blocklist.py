"""blocklist: a Tern policy plugin in Python.

Refuses recipients whose local part (before the last '@') is in the
comma-separated `blocked` value of the plugin's config, ignoring case:

    [[plugin]]
    name = "blocklist"
    path = "examples/python/build/blocklist.wasm"
    config = { blocked = "nobody,noreply,postmaster-test" }

Every decision is written to the server log. The other policy hooks let
everything through. componentize-py generates the `wit_world` package from
sdk/wit at build time; the exported interface is the class `Policy`.
"""

from wit_world import exports
from wit_world.imports import config, log
from wit_world.imports.types import (
    Reply,
    Verdict,
    Verdict_Continue,
    Verdict_Reject,
)


def blocked_local_parts() -> set[str]:
    value = config.get("blocked") or ""
    return {part.strip().lower() for part in value.split(",") if part.strip()}


class Policy(exports.Policy):
    def on_connect(self, client) -> Verdict:
        return Verdict_Continue()

    def on_helo(self, session, name) -> Verdict:
        return Verdict_Continue()

    def on_mail_from(self, session, address, params) -> Verdict:
        return Verdict_Continue()

    def on_rcpt_to(self, session, envelope, address: str, params) -> Verdict:
        local = address.rpartition("@")[0] if "@" in address else address
        if local.lower() in blocked_local_parts():
            log.log(log.Level.INFO, f"blocklist: reject {address}")
            return Verdict_Reject(
                Reply(
                    code=550,
                    enhanced="5.1.1",
                    text=f"<{address}>: this address does not receive mail (blocked by policy)",
                )
            )
        log.log(log.Level.INFO, f"blocklist: continue {address}")
        return Verdict_Continue()
