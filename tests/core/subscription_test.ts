/**
 * Every cell of RFC 6121 Appendix A: the nine states × four subscription
 * stanzas, outbound (A.2) and inbound (A.3). Expected states are written
 * out from the RFC's tables, not computed.
 */
import assert from "node:assert/strict";
import {
  type SubscriptionState,
  type SubscriptionType,
  transition,
} from "../../core/subscription.ts";

const STATES: Record<string, SubscriptionState> = {
  "None": { subscription: "none", pendingOut: false, pendingIn: false, approved: false },
  "None + Pending Out": {
    subscription: "none",
    pendingOut: true,
    pendingIn: false,
    approved: false,
  },
  "None + Pending In": {
    subscription: "none",
    pendingOut: false,
    pendingIn: true,
    approved: false,
  },
  "None + Pending Out/In": {
    subscription: "none",
    pendingOut: true,
    pendingIn: true,
    approved: false,
  },
  "To": { subscription: "to", pendingOut: false, pendingIn: false, approved: false },
  "To + Pending In": { subscription: "to", pendingOut: false, pendingIn: true, approved: false },
  "From": { subscription: "from", pendingOut: false, pendingIn: false, approved: false },
  "From + Pending Out": {
    subscription: "from",
    pendingOut: true,
    pendingIn: false,
    approved: false,
  },
  "Both": { subscription: "both", pendingOut: false, pendingIn: false, approved: false },
};
const NAMES = Object.keys(STATES);

function nameOf(s: SubscriptionState): string {
  const found = NAMES.find((n) => {
    const t = STATES[n];
    return t.subscription === s.subscription && t.pendingOut === s.pendingOut &&
      t.pendingIn === s.pendingIn;
  });
  return found ?? JSON.stringify(s);
}

// [state before, new state ("" = no change), routed/delivered]
type Row = [string, string, boolean];
const TABLES: Record<string, Row[]> = {
  // A.2.1 Outbound "subscribe" (always routed)
  "out subscribe": [
    ["None", "None + Pending Out", true],
    ["None + Pending Out", "", true],
    ["None + Pending In", "None + Pending Out/In", true],
    ["None + Pending Out/In", "", true],
    ["To", "", true],
    ["To + Pending In", "", true],
    ["From", "From + Pending Out", true],
    ["From + Pending Out", "", true],
    ["Both", "", true],
  ],
  // A.2.2 Outbound "unsubscribe"
  "out unsubscribe": [
    ["None", "", true],
    ["None + Pending Out", "None", true],
    ["None + Pending In", "", true],
    ["None + Pending Out/In", "None + Pending In", true],
    ["To", "None", true],
    ["To + Pending In", "None + Pending In", true],
    ["From", "", true],
    ["From + Pending Out", "From", true],
    ["Both", "From", true],
  ],
  // A.2.3 Outbound "subscribed" (no pending request: a pre-approval, not routed)
  "out subscribed": [
    ["None", "", false],
    ["None + Pending Out", "", false],
    ["None + Pending In", "From", true],
    ["None + Pending Out/In", "From + Pending Out", true],
    ["To", "", false],
    ["To + Pending In", "Both", true],
    ["From", "", false],
    ["From + Pending Out", "", false],
    ["Both", "", false],
  ],
  // A.2.4 Outbound "unsubscribed"
  "out unsubscribed": [
    ["None", "", true],
    ["None + Pending Out", "", true],
    ["None + Pending In", "None", true],
    ["None + Pending Out/In", "None + Pending Out", true],
    ["To", "", true],
    ["To + Pending In", "To", true],
    ["From", "None", true],
    ["From + Pending Out", "None + Pending Out", true],
    ["Both", "To", true],
  ],
  // A.3.1 Inbound "subscribe" (delivered only when it creates a pending request)
  "in subscribe": [
    ["None", "None + Pending In", true],
    ["None + Pending Out", "None + Pending Out/In", true],
    ["None + Pending In", "", false],
    ["None + Pending Out/In", "", false],
    ["To", "To + Pending In", true],
    ["To + Pending In", "", false],
    ["From", "", false],
    ["From + Pending Out", "", false],
    ["Both", "", false],
  ],
  // A.3.2 Inbound "unsubscribe"
  "in unsubscribe": [
    ["None", "", false],
    ["None + Pending Out", "", false],
    ["None + Pending In", "None", true],
    ["None + Pending Out/In", "None + Pending Out", true],
    ["To", "", false],
    ["To + Pending In", "To", true],
    ["From", "None", true],
    ["From + Pending Out", "None + Pending Out", true],
    ["Both", "To", true],
  ],
  // A.3.3 Inbound "subscribed"
  "in subscribed": [
    ["None", "", false],
    ["None + Pending Out", "To", true],
    ["None + Pending In", "", false],
    ["None + Pending Out/In", "To + Pending In", true],
    ["To", "", false],
    ["To + Pending In", "", false],
    ["From", "", false],
    ["From + Pending Out", "Both", true],
    ["Both", "", false],
  ],
  // A.3.4 Inbound "unsubscribed"
  "in unsubscribed": [
    ["None", "", false],
    ["None + Pending Out", "None", true],
    ["None + Pending In", "", false],
    ["None + Pending Out/In", "None + Pending In", true],
    ["To", "None", true],
    ["To + Pending In", "None + Pending In", true],
    ["From", "", false],
    ["From + Pending Out", "From", true],
    ["Both", "From", true],
  ],
};

for (const [table, rows] of Object.entries(TABLES)) {
  Deno.test(`RFC 6121 Appendix A: ${table}`, () => {
    const [direction, type] = table.split(" ") as ["in" | "out", SubscriptionType];
    assert.equal(rows.length, 9);
    for (const [before, after, pass] of rows) {
      const t = transition(STATES[before], direction, type);
      const expected = after === "" ? before : after;
      assert.equal(nameOf(t.state), expected, `${table} from ${before}`);
      assert.equal(t.pass, pass, `${table} from ${before}: routed/delivered`);
      if (after === "" && !(direction === "out" && type === "subscribed" && !pass)) {
        assert.equal(t.changed, false, `${table} from ${before}: no change`);
      }
    }
  });
}

Deno.test("pre-approval: recorded on an outbound subscribed, used by the next inbound subscribe", () => {
  const pre = transition(STATES["None"], "out", "subscribed");
  assert.equal(pre.state.approved, true);
  assert.equal(pre.changed, true);
  const sub = transition(pre.state, "in", "subscribe");
  assert.equal(sub.autoApprove, true);
  assert.equal(sub.state.subscription, "from");
  assert.equal(sub.state.approved, false);
  // From "To" the pre-approved request makes it "Both".
  const both = transition({ ...STATES["To"], approved: true }, "in", "subscribe");
  assert.equal(both.state.subscription, "both");
  // Outbound unsubscribed cancels a pre-approval.
  assert.equal(transition(pre.state, "out", "unsubscribed").state.approved, false);
});

Deno.test("a subscribe from a contact that already has a subscription is answered, not delivered", () => {
  for (const s of ["From", "From + Pending Out", "Both"]) {
    const t = transition(STATES[s], "in", "subscribe");
    assert.equal(t.autoReplySubscribed, true, s);
    assert.equal(t.pass, false, s);
  }
});
