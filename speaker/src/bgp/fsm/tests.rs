use super::*;
use proptest::prelude::*;

fn expect() -> Expect {
    Expect {
        local_asn: 64512,
        router_id: Ipv4Addr::new(10, 0, 0, 1),
        peer_asn: PeerAsnRule::Fixed(64513),
        hold_time: Duration::from_secs(90),
        keepalive: None,
        connect_retry: Duration::from_secs(5),
        families: vec![(1, 1), (2, 1)],
    }
}

fn open() -> PeerOpen {
    PeerOpen {
        version: 4,
        asn: 64513,
        hold_time: 30,
        router_id: Ipv4Addr::new(10, 0, 0, 2),
        four_byte_asn: true,
        route_refresh: true,
        families: vec![(1, 1), (2, 1)],
        graceful_restart: None,
    }
}

fn established() -> Fsm {
    let mut f = Fsm::new(expect());
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(open()));
    f.handle(Event::KeepaliveReceived);
    assert_eq!(f.state(), State::Established);
    f
}

fn negotiated() -> Negotiated {
    Negotiated {
        hold: Duration::from_secs(30),
        keepalive: Duration::from_secs(10),
        peer_asn: 64513,
        four_byte_asn: true,
        route_refresh: true,
        families: vec![(1, 1), (2, 1)],
        graceful_restart: false,
    }
}

#[test]
fn the_happy_path_action_by_action() {
    use Action::*;
    let mut f = Fsm::new(expect());
    let steps: Vec<(Event, State, Vec<Action>)> = vec![
        (
            Event::ManualStart,
            State::Connect,
            vec![ArmConnectRetry(Duration::from_secs(5)), StartConnection],
        ),
        (
            Event::TcpConnected,
            State::OpenSent,
            vec![StopConnectRetry, SendOpen, ArmHold(OPEN_HOLD)],
        ),
        (
            Event::OpenReceived(open()),
            State::OpenConfirm,
            vec![
                SendKeepalive,
                ArmKeepalive(Duration::from_secs(10)),
                ArmHold(Duration::from_secs(30)),
            ],
        ),
        (
            Event::KeepaliveReceived,
            State::Established,
            vec![
                ArmHold(Duration::from_secs(30)),
                SessionUp(negotiated()),
                SendTable,
            ],
        ),
        (
            Event::KeepaliveTimerExpired,
            State::Established,
            vec![SendKeepalive, ArmKeepalive(Duration::from_secs(10))],
        ),
        (
            Event::UpdateReceived,
            State::Established,
            vec![ArmHold(Duration::from_secs(30))],
        ),
        (
            Event::RouteRefreshReceived,
            State::Established,
            vec![SendTable],
        ),
        (
            Event::ManualStop,
            State::Idle,
            vec![
                SendNotification(Notification::new(6, 2)),
                Disconnect,
                StopConnectRetry,
                StopHold,
                StopKeepalive,
                SessionDown("stopped".into()),
            ],
        ),
    ];
    for (ev, state, actions) in steps {
        let got = f.handle(ev.clone());
        assert_eq!((f.state(), &got), (state, &actions), "after {ev:?}");
    }
}

#[test]
fn hold_timer_expiry_notifies_4_0_and_retries_after_backoff() {
    let mut f = established();
    let a = f.handle(Event::HoldTimerExpired);
    assert_eq!(a[0], Action::SendNotification(Notification::new(4, 0)));
    assert!(a.contains(&Action::SessionDown("hold timer expired".into())));
    assert_eq!(
        a.last(),
        Some(&Action::ArmConnectRetry(Duration::from_secs(10))),
        "one failure doubles the wait"
    );
    assert_eq!(f.state(), State::Idle);
    // The retry timer restarts the session by itself.
    assert_eq!(
        f.handle(Event::ConnectRetryTimerExpired),
        vec![
            Action::ArmConnectRetry(Duration::from_secs(10)),
            Action::StartConnection
        ]
    );
}

#[test]
fn backoff_doubles_and_is_capped_and_resets_when_established() {
    let mut f = Fsm::new(expect());
    f.handle(Event::ManualStart);
    let mut waits = Vec::new();
    for _ in 0..8 {
        let a = f.handle(Event::TcpConnectFailed);
        waits.extend(a.into_iter().filter_map(|x| {
            if let Action::ArmConnectRetry(d) = x {
                Some(d.as_secs())
            } else {
                None
            }
        }));
        f.handle(Event::ConnectRetryTimerExpired);
    }
    assert_eq!(waits, [10, 20, 40, 80, 120, 120, 120, 120]);
    f.handle(Event::TcpConnected);
    f.handle(Event::OpenReceived(open()));
    f.handle(Event::KeepaliveReceived);
    assert_eq!(f.backoff(), Duration::from_secs(5));
}

#[test]
fn bad_opens_get_the_right_notification() {
    let cases: Vec<(PeerOpen, u8, u8)> = vec![
        (
            PeerOpen {
                version: 3,
                ..open()
            },
            2,
            1,
        ),
        (
            PeerOpen {
                asn: 65000,
                ..open()
            },
            2,
            2,
        ),
        (
            PeerOpen {
                router_id: Ipv4Addr::UNSPECIFIED,
                ..open()
            },
            2,
            3,
        ),
        (
            PeerOpen {
                hold_time: 2,
                ..open()
            },
            2,
            6,
        ),
    ];
    for (o, c, s) in cases {
        let mut f = Fsm::new(expect());
        f.handle(Event::ManualStart);
        f.handle(Event::TcpConnected);
        let a = f.handle(Event::OpenReceived(o.clone()));
        match &a[0] {
            Action::SendNotification(n) => assert_eq!((n.code, n.subcode), (c, s), "{o:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(f.state(), State::Idle);
    }
}

#[test]
fn ibgp_and_dynamic_peers_and_zero_hold_time() {
    let mut e = expect();
    e.peer_asn = PeerAsnRule::Internal;
    let f = Fsm::new(e.clone());
    assert!(
        f.check_open(&PeerOpen {
            asn: 64512,
            ..open()
        })
        .is_ok()
    );
    assert!(
        f.check_open(&PeerOpen {
            asn: 64512,
            router_id: e.router_id,
            ..open()
        })
        .is_err(),
        "iBGP peer with our router id"
    );
    e.peer_asn = PeerAsnRule::External;
    let f = Fsm::new(e);
    assert!(
        f.check_open(&PeerOpen {
            asn: 64512,
            ..open()
        })
        .is_err()
    );
    assert!(
        f.check_open(&PeerOpen {
            asn: 4_200_000_000,
            ..open()
        })
        .is_ok()
    );
    let n = f
        .check_open(&PeerOpen {
            asn: 7,
            hold_time: 0,
            ..open()
        })
        .unwrap();
    assert_eq!((n.hold, n.keepalive), (Duration::ZERO, Duration::ZERO));
}

#[test]
fn unexpected_messages_are_fsm_errors_with_rfc_6608_subcodes() {
    let mut f = Fsm::new(expect());
    f.handle(Event::ManualStart);
    f.handle(Event::TcpConnected);
    assert_eq!(
        f.handle(Event::UpdateReceived)[0],
        Action::SendNotification(Notification::new(5, 1))
    );
    let mut f = established();
    assert_eq!(
        f.handle(Event::OpenReceived(open()))[0],
        Action::SendNotification(Notification::new(5, 3))
    );
}

#[test]
fn a_malformed_message_sends_its_own_notification() {
    let mut f = established();
    let n = Notification::with_data(1, 2, vec![0, 5]);
    let a = f.handle(Event::MessageInvalid(n.clone()));
    assert_eq!(a[0], Action::SendNotification(n));
    assert!(a.contains(&Action::Disconnect));
    assert_eq!(f.state(), State::Idle);
}

#[test]
fn a_peer_notification_or_closed_connection_ends_the_session_quietly() {
    let mut f = established();
    let a = f.handle(Event::NotificationReceived(Notification::new(6, 2)));
    assert!(!a.iter().any(|x| matches!(x, Action::SendNotification(_))));
    assert!(a.iter().any(|x| matches!(x, Action::SessionDown(_))));
    let mut f = established();
    let a = f.handle(Event::TcpClosed);
    assert!(a.contains(&Action::Disconnect));
    assert_eq!(f.state(), State::Idle);
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        Just(Event::ManualStart),
        Just(Event::ManualStop),
        Just(Event::ConnectRetryTimerExpired),
        Just(Event::HoldTimerExpired),
        Just(Event::KeepaliveTimerExpired),
        Just(Event::TcpConnected),
        Just(Event::TcpConnectFailed),
        Just(Event::TcpClosed),
        (0u8..6, any::<u16>(), any::<u32>()).prop_map(|(v, h, a)| Event::OpenReceived(PeerOpen {
            version: v,
            hold_time: h,
            asn: a,
            ..open()
        })),
        Just(Event::OpenReceived(open())),
        Just(Event::KeepaliveReceived),
        Just(Event::UpdateReceived),
        Just(Event::RouteRefreshReceived),
        Just(Event::NotificationReceived(Notification::new(6, 2))),
        Just(Event::MessageInvalid(Notification::new(1, 1))),
    ]
}

proptest! {
    #[test]
    fn never_panics_and_keeps_its_invariants(events in prop::collection::vec(event(), 0..80)) {
        let mut f = Fsm::new(expect());
        let mut up = false;
        for ev in events {
            let a = f.handle(ev);
            for x in &a {
                match x {
                    Action::SessionUp(_) => { prop_assert!(!up); up = true; }
                    Action::SessionDown(_) => { prop_assert!(up); up = false; }
                    Action::ArmConnectRetry(d) => prop_assert!(*d <= MAX_BACKOFF),
                    _ => {}
                }
            }
            prop_assert_eq!(up, f.state() == State::Established);
            prop_assert_eq!(f.negotiated().is_some(), matches!(f.state(), State::OpenConfirm | State::Established));
        }
    }
}

#[test]
fn families_are_what_both_sides_offered_and_ipv4_without_any_mp_capability() {
    let f = Fsm::new(expect());
    let fams = |families: Vec<(u16, u8)>| {
        f.check_open(&PeerOpen { families, ..open() })
            .unwrap()
            .families
    };
    assert_eq!(
        fams(vec![(2, 1), (1, 1)]),
        vec![(1, 1), (2, 1)],
        "our order"
    );
    assert_eq!(fams(vec![(2, 1), (1, 128)]), vec![(2, 1)]);
    // RFC 4760 section 8: no Multiprotocol capability at all is IPv4 unicast.
    assert_eq!(fams(vec![]), vec![(1, 1)]);
    // disableMP on an IPv6 session: we offer IPv6 only.
    let mut e = expect();
    e.families = vec![(2, 1)];
    let n = Fsm::new(e).check_open(&open()).unwrap();
    assert_eq!(n.families, vec![(2, 1)]);
    assert!(!n.graceful_restart);
    let gr = Fsm::new(expect())
        .check_open(&PeerOpen {
            graceful_restart: Some(crate::bgp::graceful_restart::GracefulRestart {
                restarted: false,
                restart_time: 120,
                families: vec![],
            }),
            ..open()
        })
        .unwrap();
    assert!(gr.graceful_restart);
}
