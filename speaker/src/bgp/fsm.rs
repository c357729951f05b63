//! The BGP session state machine (RFC 4271 section 8), sans I/O:
//! `Fsm::handle(event) -> actions`. Timers arrive as events and are armed by
//! actions; the session driver owns the socket and the clocks.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::graceful_restart::GracefulRestart;
use super::notification::{Notification, code};

/// RFC 4271 section 8.2.2: the hold timer while waiting for an OPEN is "a large
/// value"; 4 minutes is suggested.
pub const OPEN_HOLD: Duration = Duration::from_secs(240);
/// Longest wait between connection attempts after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(120);

/// Session states, with the RFC's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not trying.
    Idle,
    /// Connecting.
    Connect,
    /// Waiting to retry the connection.
    Active,
    /// OPEN sent, waiting for the peer's.
    OpenSent,
    /// OPENs exchanged, waiting for a KEEPALIVE.
    OpenConfirm,
    /// Up: routes flow.
    Established,
}

/// The peer's OPEN, as decoded (4-byte AS from the capability when present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerOpen {
    /// BGP version.
    pub version: u8,
    /// The peer's AS (from the 4-octet AS capability if sent, else the 2-byte field).
    pub asn: u32,
    /// Proposed hold time in seconds.
    pub hold_time: u16,
    /// BGP identifier.
    pub router_id: Ipv4Addr,
    /// Whether it supports 4-octet AS numbers (RFC 6793).
    pub four_byte_asn: bool,
    /// Whether it supports route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Multiprotocol families it supports (AFI, SAFI).
    pub families: Vec<(u16, u8)>,
    /// Its Graceful Restart capability (RFC 4724), if it sent one we could read.
    pub graceful_restart: Option<GracefulRestart>,
}

/// What the session expects of the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// Our AS.
    pub local_asn: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The peer AS we accept: exactly one, or any equal (`Internal`) / unequal to ours.
    pub peer_asn: PeerAsnRule,
    /// Our proposed hold time.
    pub hold_time: Duration,
    /// Keepalive interval; `None`: a third of the negotiated hold time.
    pub keepalive: Option<Duration>,
    /// First wait between connection attempts.
    pub connect_retry: Duration,
    /// The families (AFI, SAFI) we offer in our OPEN.
    pub families: Vec<(u16, u8)>,
}

/// How the peer's AS is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAsnRule {
    /// Exactly this AS.
    Fixed(u32),
    /// Our own AS (iBGP).
    Internal,
    /// Any AS but ours (eBGP).
    External,
}

/// What the session agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// Hold time (zero: no keepalives, no hold timer).
    pub hold: Duration,
    /// Keepalive interval (zero when hold is zero).
    pub keepalive: Duration,
    /// The peer's AS.
    pub peer_asn: u32,
    /// Whether the peer can take UPDATEs with 4-byte AS_PATHs.
    pub four_byte_asn: bool,
    /// Whether route refresh can be asked of it.
    pub route_refresh: bool,
    /// The families both sides offered, in our order (RFC 4760 section 8: a
    /// peer without any Multiprotocol capability speaks IPv4 unicast only).
    pub families: Vec<(u16, u8)>,
    /// The peer sent the Graceful Restart capability: it keeps our routes while
    /// we restart (when we sent it too).
    pub graceful_restart: bool,
}

/// Inputs, named as facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The operator (configuration) starts the session.
    ManualStart,
    /// The operator stops it (peer deleted, speaker shutting down).
    ManualStop,
    /// Time to try connecting again.
    ConnectRetryTimerExpired,
    /// Nothing heard from the peer within the hold time.
    HoldTimerExpired,
    /// Time to send a KEEPALIVE.
    KeepaliveTimerExpired,
    /// The TCP connection is up.
    TcpConnected,
    /// The TCP connection could not be made.
    TcpConnectFailed,
    /// The TCP connection closed or failed.
    TcpClosed,
    /// An OPEN arrived.
    OpenReceived(PeerOpen),
    /// A KEEPALIVE arrived.
    KeepaliveReceived,
    /// A valid UPDATE arrived (we ignore its routes, but it proves liveness).
    UpdateReceived,
    /// A ROUTE-REFRESH arrived.
    RouteRefreshReceived,
    /// A NOTIFICATION arrived.
    NotificationReceived(Notification),
    /// A message failed decoding; the notification says why.
    MessageInvalid(Notification),
}

/// Outputs, named as commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open the TCP connection.
    StartConnection,
    /// Close it.
    Disconnect,
    /// Send our OPEN.
    SendOpen,
    /// Send a KEEPALIVE.
    SendKeepalive,
    /// Send a NOTIFICATION (then the driver closes).
    SendNotification(Notification),
    /// Send the whole table (session just came up, or the peer asked).
    SendTable,
    /// (Re)arm the connect-retry timer.
    ArmConnectRetry(Duration),
    /// Stop it.
    StopConnectRetry,
    /// (Re)arm the hold timer.
    ArmHold(Duration),
    /// Stop it.
    StopHold,
    /// (Re)arm the keepalive timer.
    ArmKeepalive(Duration),
    /// Stop it.
    StopKeepalive,
    /// The session is up with these parameters.
    SessionUp(Negotiated),
    /// The session went down (routes from it are gone).
    SessionDown(String),
}

/// One peer's state machine.
#[derive(Clone, Debug)]
pub struct Fsm {
    state: State,
    expect: Expect,
    negotiated: Option<Negotiated>,
    /// Consecutive failures, for the connect-retry backoff.
    failures: u32,
}

impl Fsm {
    /// A machine in Idle.
    pub fn new(expect: Expect) -> Self {
        Fsm {
            state: State::Idle,
            expect,
            negotiated: None,
            failures: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// What was negotiated, once in OpenConfirm or Established.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The wait before the next connection attempt: the configured connect time,
    /// doubled per consecutive failure, at most [`MAX_BACKOFF`].
    pub fn backoff(&self) -> Duration {
        let factor = 1u32 << self.failures.min(7);
        (self.expect.connect_retry * factor).min(MAX_BACKOFF.max(self.expect.connect_retry))
    }

    /// Checks the peer's OPEN against what we expect (RFC 4271 section 6.2).
    pub fn check_open(&self, open: &PeerOpen) -> Result<Negotiated, Notification> {
        if open.version != 4 {
            // Data: the largest version we support (RFC 4271 section 6.2).
            return Err(Notification::with_data(
                code::OPEN,
                code::OPEN_UNSUPPORTED_VERSION,
                vec![0, 4],
            ));
        }
        let asn_ok = match self.expect.peer_asn {
            PeerAsnRule::Fixed(a) => open.asn == a,
            PeerAsnRule::Internal => open.asn == self.expect.local_asn,
            PeerAsnRule::External => open.asn != self.expect.local_asn,
        };
        if !asn_ok || open.asn == 0 {
            return Err(Notification::new(code::OPEN, code::OPEN_BAD_PEER_AS));
        }
        let internal = open.asn == self.expect.local_asn;
        if open.router_id.is_unspecified() || (internal && open.router_id == self.expect.router_id)
        {
            return Err(Notification::new(code::OPEN, code::OPEN_BAD_BGP_ID));
        }
        // Hold time: zero, or at least three seconds (RFC 4271 section 4.2).
        if open.hold_time == 1 || open.hold_time == 2 {
            return Err(Notification::new(
                code::OPEN,
                code::OPEN_UNACCEPTABLE_HOLD_TIME,
            ));
        }
        let ours = self.expect.hold_time.as_secs().min(u64::from(u16::MAX));
        let hold = Duration::from_secs(ours.min(u64::from(open.hold_time)));
        let keepalive = if hold.is_zero() {
            Duration::ZERO
        } else {
            self.expect
                .keepalive
                .map_or(hold / 3, |k| k.min(hold / 3).max(Duration::from_secs(1)))
        };
        let peer_families: &[(u16, u8)] = if open.families.is_empty() {
            &[(1, 1)]
        } else {
            &open.families
        };
        Ok(Negotiated {
            hold,
            keepalive,
            peer_asn: open.asn,
            four_byte_asn: open.four_byte_asn,
            route_refresh: open.route_refresh,
            families: self
                .expect
                .families
                .iter()
                .filter(|f| peer_families.contains(f))
                .copied()
                .collect(),
            graceful_restart: open.graceful_restart.is_some(),
        })
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, ev: Event) -> Vec<Action> {
        use Action::*;
        use State::*;
        let was_up = self.state == Established;
        match (self.state, ev) {
            (Idle, Event::ManualStart) => {
                self.failures = 0;
                self.state = Connect;
                vec![ArmConnectRetry(self.backoff()), StartConnection]
            }
            (Idle, Event::ConnectRetryTimerExpired) => {
                // Automatic restart after an error (RFC 4271 section 8.1.1, option 1).
                self.state = Connect;
                vec![ArmConnectRetry(self.backoff()), StartConnection]
            }
            (Idle, _) => vec![],
            (_, Event::ManualStop) => {
                let mut a = Vec::new();
                if matches!(self.state, OpenSent | OpenConfirm | Established) {
                    a.push(SendNotification(Notification::new(
                        code::CEASE,
                        code::CEASE_ADMIN_SHUTDOWN,
                    )));
                }
                a.extend([Disconnect, StopConnectRetry, StopHold, StopKeepalive]);
                if was_up {
                    a.push(SessionDown("stopped".into()));
                }
                self.state = Idle;
                self.negotiated = None;
                a
            }
            (Connect | Active, Event::TcpConnected) => {
                self.state = OpenSent;
                vec![StopConnectRetry, SendOpen, ArmHold(OPEN_HOLD)]
            }
            (Connect, Event::TcpConnectFailed | Event::TcpClosed) => {
                self.failures += 1;
                self.state = Active;
                vec![Disconnect, ArmConnectRetry(self.backoff())]
            }
            (Connect | Active, Event::ConnectRetryTimerExpired) => {
                self.state = Connect;
                vec![Disconnect, ArmConnectRetry(self.backoff()), StartConnection]
            }
            (Connect | Active, _) => vec![],
            (OpenSent, Event::OpenReceived(open)) => match self.check_open(&open) {
                Ok(n) => {
                    self.state = OpenConfirm;
                    let mut a = vec![SendKeepalive];
                    if n.hold.is_zero() {
                        a.extend([StopHold, StopKeepalive]);
                    } else {
                        a.extend([ArmKeepalive(n.keepalive), ArmHold(n.hold)]);
                    }
                    self.negotiated = Some(n);
                    a
                }
                Err(notification) => self.fail(Some(notification), "peer's OPEN refused".into()),
            },
            (OpenSent, Event::TcpClosed) => {
                // RFC 4271: back to Active and retry.
                self.failures += 1;
                self.state = Active;
                vec![Disconnect, StopHold, ArmConnectRetry(self.backoff())]
            }
            (OpenConfirm, Event::KeepaliveReceived) => {
                let Some(n) = self.negotiated.clone() else {
                    return self.fail(
                        Some(Notification::new(code::FSM, code::FSM_OPEN_CONFIRM)),
                        "no negotiated parameters".into(),
                    );
                };
                self.state = Established;
                self.failures = 0;
                let mut a = Vec::new();
                if !n.hold.is_zero() {
                    a.push(ArmHold(n.hold));
                }
                a.extend([SessionUp(n), SendTable]);
                a
            }
            (OpenConfirm | Established, Event::KeepaliveTimerExpired) => {
                let k = self
                    .negotiated
                    .as_ref()
                    .map(|n| n.keepalive)
                    .unwrap_or_default();
                if k.is_zero() {
                    vec![]
                } else {
                    vec![SendKeepalive, ArmKeepalive(k)]
                }
            }
            (Established, Event::KeepaliveReceived | Event::UpdateReceived) => {
                let h = self.negotiated.as_ref().map(|n| n.hold).unwrap_or_default();
                if h.is_zero() {
                    vec![]
                } else {
                    vec![ArmHold(h)]
                }
            }
            (Established, Event::RouteRefreshReceived) => vec![SendTable],
            (OpenSent | OpenConfirm | Established, Event::HoldTimerExpired) => self.fail(
                Some(Notification::new(code::HOLD_TIMER_EXPIRED, 0)),
                "hold timer expired".into(),
            ),
            (OpenSent | OpenConfirm | Established, Event::NotificationReceived(n)) => {
                self.fail(None, format!("peer sent NOTIFICATION: {n}"))
            }
            (OpenSent | OpenConfirm | Established, Event::MessageInvalid(n)) => {
                let why = format!("malformed message from the peer: {n}");
                self.fail(Some(n), why)
            }
            (OpenConfirm | Established, Event::TcpClosed | Event::TcpConnectFailed) => {
                self.fail(None, "connection closed".into())
            }
            (
                OpenSent | OpenConfirm | Established,
                Event::ConnectRetryTimerExpired | Event::ManualStart | Event::TcpConnected,
            ) => vec![],
            (state, ev) => {
                // Any other message in these states is an FSM error (RFC 6608).
                let sub = match state {
                    OpenSent => code::FSM_OPEN_SENT,
                    OpenConfirm => code::FSM_OPEN_CONFIRM,
                    _ => code::FSM_ESTABLISHED,
                };
                self.fail(
                    Some(Notification::new(code::FSM, sub)),
                    format!("unexpected {ev:?} in {state:?}"),
                )
            }
        }
    }

    /// Ends the session after an error: notify (if we have something to say),
    /// close, and retry after the backoff.
    fn fail(&mut self, notify: Option<Notification>, why: String) -> Vec<Action> {
        let was_up = self.state == State::Established;
        let mut a = Vec::new();
        if let Some(n) = notify {
            a.push(Action::SendNotification(n));
        }
        a.extend([Action::Disconnect, Action::StopHold, Action::StopKeepalive]);
        if was_up {
            a.push(Action::SessionDown(why));
        }
        self.failures += 1;
        self.state = State::Idle;
        self.negotiated = None;
        a.push(Action::ArmConnectRetry(self.backoff()));
        a
    }
}

#[cfg(test)]
mod tests;
