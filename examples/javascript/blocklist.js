// blocklist: a Tern policy plugin in JavaScript.
//
// Refuses recipients whose local part (before the last '@') is in the
// comma-separated `blocked` value of the plugin's config, ignoring case:
//
//     [[plugin]]
//     name = "blocklist"
//     path = "examples/javascript/build/blocklist.wasm"
//     config = { blocked = "nobody,noreply,postmaster-test" }
//
// Every decision is written to the server log. The other policy hooks let
// everything through. Imports are ES modules named after the WIT
// interfaces; the exported `policy` interface is an exported object.

import { log } from 'tern:plugin/log@0.1.0';
import { get } from 'tern:plugin/config@0.1.0';

const CONTINUE = { tag: 'continue' };

function blockedLocalParts() {
  const value = get('blocked') ?? '';
  return value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
}

export const policy = {
  onConnect(_client) {
    return CONTINUE;
  },
  onHelo(_session, _name) {
    return CONTINUE;
  },
  onMailFrom(_session, _address, _params) {
    return CONTINUE;
  },
  onRcptTo(_session, _envelope, address, _params) {
    const at = address.lastIndexOf('@');
    const local = (at >= 0 ? address.slice(0, at) : address).toLowerCase();
    if (blockedLocalParts().includes(local)) {
      log('info', `blocklist: reject ${address}`);
      return {
        tag: 'reject',
        val: {
          code: 550,
          enhanced: '5.1.1',
          text: `<${address}>: this address does not receive mail (blocked by policy)`,
        },
      };
    }
    log('info', `blocklist: continue ${address}`);
    return CONTINUE;
  },
};
