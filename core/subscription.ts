/**
 * The presence subscription state machine of RFC 6121 Appendix A, as a pure
 * function: a state and a subscription stanza in, the next state out, and
 * whether the stanza is to be routed (outbound) or delivered (inbound).
 *
 * A state is the roster item's `subscription` plus the pending flags:
 * "Pending Out" is the item's `ask="subscribe"`, "Pending In" a stored
 * inbound request, and `approved` a pre-approval (RFC 6121 §3.4).
 *
 * @example
 * ```ts
 * const next = transition({ subscription: "none", pendingOut: false, pendingIn: true, approved: false },
 *   "out", "subscribed");
 * // next.state.subscription === "from", next.pass === true
 * ```
 * @module
 */

export type Subscription = "none" | "to" | "from" | "both";
export type SubscriptionType = "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed";

export interface SubscriptionState {
  subscription: Subscription;
  pendingOut: boolean;
  pendingIn: boolean;
  approved: boolean;
}

export interface Transition {
  state: SubscriptionState;
  /** Whether anything changed (a roster push is due). */
  changed: boolean;
  /** Outbound: route the stanza to the contact. Inbound: deliver it to the user. */
  pass: boolean;
  /** Inbound subscribe met a pre-approval: answer `subscribed` automatically. */
  autoApprove?: boolean;
  /** Inbound subscribe while the contact already has a subscription: answer `subscribed`. */
  autoReplySubscribed?: boolean;
}

const hasTo = (s: Subscription) => s === "to" || s === "both";
const hasFrom = (s: Subscription) => s === "from" || s === "both";
const make = (to: boolean, from: boolean): Subscription =>
  to ? (from ? "both" : "to") : (from ? "from" : "none");

function result(
  before: SubscriptionState,
  state: SubscriptionState,
  pass: boolean,
  extra: Partial<Transition> = {},
): Transition {
  const changed = before.subscription !== state.subscription ||
    before.pendingOut !== state.pendingOut || before.pendingIn !== state.pendingIn ||
    before.approved !== state.approved;
  return { state, changed, pass, ...extra };
}

/** Applies one subscription stanza, sent by the user ("out") or to the user ("in"). */
export function transition(
  s: SubscriptionState,
  direction: "in" | "out",
  type: SubscriptionType,
): Transition {
  const to = hasTo(s.subscription);
  const from = hasFrom(s.subscription);
  if (direction === "out") {
    switch (type) {
      // A.2.1: the user asks for the contact's presence.
      case "subscribe":
        return result(s, { ...s, pendingOut: !to }, true);
      // A.2.2: the user stops receiving the contact's presence.
      case "unsubscribe":
        return result(s, { ...s, subscription: make(false, from), pendingOut: false }, true);
      // A.2.3: the user approves the contact's request, or pre-approves one (§3.4).
      case "subscribed":
        if (s.pendingIn) {
          return result(s, { ...s, subscription: make(to, true), pendingIn: false }, true);
        }
        if (from) return result(s, s, false);
        return result(s, { ...s, approved: true }, false);
      // A.2.4: the user refuses or cancels the contact's subscription.
      case "unsubscribed":
        return result(
          s,
          { ...s, subscription: make(to, false), pendingIn: false, approved: false },
          true,
        );
    }
  }
  switch (type) {
    // A.3.1: the contact asks for the user's presence.
    case "subscribe":
      if (from) return result(s, s, false, { autoReplySubscribed: true });
      if (s.approved) {
        return result(s, { ...s, subscription: make(to, true), approved: false }, false, {
          autoApprove: true,
        });
      }
      if (s.pendingIn) return result(s, s, false);
      return result(s, { ...s, pendingIn: true }, true);
    // A.3.2: the contact no longer wants the user's presence.
    case "unsubscribe":
      if (!from && !s.pendingIn) return result(s, s, false);
      return result(s, { ...s, subscription: make(to, false), pendingIn: false }, true);
    // A.3.3: the contact approved the user's request.
    case "subscribed":
      if (!s.pendingOut || to) return result(s, s, false);
      return result(s, { ...s, subscription: make(true, from), pendingOut: false }, true);
    // A.3.4: the contact refused or cancelled the user's subscription.
    case "unsubscribed":
      if (!to && !s.pendingOut) return result(s, s, false);
      return result(s, { ...s, subscription: make(false, from), pendingOut: false }, true);
  }
}
