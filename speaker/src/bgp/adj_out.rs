//! What a session has told its peer, and the UPDATEs that bring the peer to a new
//! desired set (pure). Only differences are sent; prefixes sharing attributes go in
//! the same UPDATEs. Attributes are shared (`Arc`): 10,000 prefixes usually carry
//! a handful of distinct sets, and comparing two shared sets is a pointer test.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::IpNet;

use super::update::{Attrs, Encoding, announce, end_of_rib, withdraw};

/// Routes advertised to one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdjOut {
    advertised: BTreeMap<IpNet, Arc<Attrs>>,
}

/// Desired routes with their (shared) attributes.
pub type Desired = BTreeMap<IpNet, Arc<Attrs>>;

fn is_v6(p: &IpNet) -> bool {
    matches!(p, IpNet::V6(_))
}

/// Withdrawals first (per family), then announcements grouped by attributes.
fn encode(
    gone: &[IpNet],
    groups: BTreeMap<(bool, &Attrs), Vec<IpNet>>,
    enc: Encoding,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for fam in [false, true] {
        let w: Vec<IpNet> = gone.iter().filter(|p| is_v6(p) == fam).copied().collect();
        if !w.is_empty() {
            out.extend(withdraw(&w));
        }
    }
    for ((_, attrs), prefixes) in groups {
        out.extend(announce(&prefixes, attrs, enc));
    }
    out
}

impl AdjOut {
    /// What the peer has from us.
    pub fn advertised(&self) -> &Desired {
        &self.advertised
    }

    /// Forgets everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.advertised.clear();
    }

    /// The UPDATEs that turn what the peer has into `desired`: withdrawals first,
    /// then announcements grouped by attributes. Records `desired` as advertised.
    pub fn diff(&mut self, desired: Desired, enc: Encoding) -> Vec<Vec<u8>> {
        let gone: Vec<IpNet> = self
            .advertised
            .keys()
            .filter(|p| !desired.contains_key(p))
            .copied()
            .collect();
        let mut groups: BTreeMap<(bool, &Attrs), Vec<IpNet>> = BTreeMap::new();
        for (p, a) in &desired {
            if self.advertised.get(p) != Some(a) {
                groups.entry((is_v6(p), &**a)).or_default().push(*p);
            }
        }
        let out = encode(&gone, groups, enc);
        self.advertised = desired;
        out
    }

    /// The UPDATEs for `changes` alone (a prefix with its new attributes, or
    /// `None` to withdraw it); the rest of what is advertised stays.
    pub fn apply(
        &mut self,
        changes: Vec<(IpNet, Option<Arc<Attrs>>)>,
        enc: Encoding,
    ) -> Vec<Vec<u8>> {
        let mut gone = Vec::new();
        let mut groups: BTreeMap<(bool, Arc<Attrs>), Vec<IpNet>> = BTreeMap::new();
        for (p, a) in changes {
            match a {
                None => {
                    if self.advertised.remove(&p).is_some() {
                        gone.push(p);
                    }
                }
                Some(a) => {
                    if self.advertised.get(&p) != Some(&a) {
                        groups.entry((is_v6(&p), a.clone())).or_default().push(p);
                        self.advertised.insert(p, a);
                    }
                }
            }
        }
        let groups = groups
            .iter()
            .map(|((v6, a), ps)| ((*v6, &**a), ps.clone()))
            .collect();
        encode(&gone, groups, enc)
    }

    /// The whole table after the session came up (or the peer asked for a
    /// refresh), followed by End-of-RIB for each family.
    pub fn full(&mut self, desired: Desired, enc: Encoding, v4: bool, v6: bool) -> Vec<Vec<u8>> {
        self.advertised.clear();
        let mut out = self.diff(desired, enc);
        if v4 {
            out.push(end_of_rib(false));
        }
        if v6 {
            out.push(end_of_rib(true));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bgp::packet::{Message, decode};

    fn attrs(nh: &str, communities: Vec<u32>) -> Attrs {
        Attrs {
            as_path: vec![64512],
            next_hop: nh.parse().unwrap(),
            link_local: None,
            local_pref: None,
            communities,
            large_communities: vec![],
        }
    }

    fn table(entries: &[(&str, Attrs)]) -> Desired {
        entries
            .iter()
            .map(|(p, a)| (p.parse().unwrap(), Arc::new(a.clone())))
            .collect()
    }

    const ENC: Encoding = Encoding {
        four_byte_asn: true,
    };

    #[test]
    fn only_changes_are_sent() {
        let a = attrs("10.0.0.11", vec![]);
        let mut adj = AdjOut::default();
        let mut want = table(&[
            ("198.51.100.1/32", a.clone()),
            ("198.51.100.2/32", a.clone()),
        ]);
        let first = adj.full(want.clone(), ENC, true, false);
        assert_eq!(
            first.len(),
            2,
            "one UPDATE for both prefixes, then End-of-RIB"
        );
        // A new Service: one UPDATE carrying only its prefix (5 NLRI bytes).
        want.insert("198.51.100.3/32".parse().unwrap(), Arc::new(a.clone()));
        let next = adj.diff(want.clone(), ENC);
        assert_eq!(next.len(), 1);
        assert!(next[0].ends_with(&[32, 198, 51, 100, 3]));
        assert_eq!(
            next[0].len(),
            19 + 4 + 20 + 5,
            "header, lengths, ORIGIN+AS_PATH+NEXT_HOP, one prefix"
        );
        // Nothing changed: nothing sent.
        assert!(adj.diff(want.clone(), ENC).is_empty());
        // One removed, one with a new community: a withdrawal and one announcement.
        want.remove(&"198.51.100.1/32".parse().unwrap());
        want.insert(
            "198.51.100.2/32".parse().unwrap(),
            Arc::new(attrs("10.0.0.11", vec![7])),
        );
        let msgs = adj.diff(want.clone(), ENC);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            &msgs[0][19..],
            &[0, 5, 32, 198, 51, 100, 1, 0, 0],
            "withdrawals go first"
        );
        assert!(msgs[1].ends_with(&[32, 198, 51, 100, 2]));
        for m in &msgs {
            assert!(
                matches!(decode(m), Ok(Message::Update(u)) if u.treat_as_withdraw.is_none()),
                "our own UPDATE passes our RFC 7606 checks"
            );
        }
    }

    #[test]
    fn families_and_attribute_sets_are_grouped() {
        let a = attrs("10.0.0.11", vec![]);
        let b = attrs("10.0.0.11", vec![1]);
        let six = attrs("fd00::11", vec![]);
        let mut adj = AdjOut::default();
        let want = table(&[
            ("10.0.0.1/32", a.clone()),
            ("10.0.0.2/32", b.clone()),
            ("10.0.0.3/32", a),
            ("fd00::1/128", six.clone()),
            ("fd00::2/128", six),
        ]);
        let msgs = adj.full(want.clone(), ENC, true, true);
        assert_eq!(
            msgs.len(),
            3 + 2,
            "IPv4 with a, IPv4 with b, IPv6, and two End-of-RIBs"
        );
        assert_eq!(adj.advertised().len(), 5);
        adj.clear();
        assert!(adj.advertised().is_empty());
    }

    #[test]
    fn applied_changes_touch_only_their_prefixes() {
        let a = Arc::new(attrs("10.0.0.11", vec![]));
        let b = Arc::new(attrs("10.0.0.11", vec![9]));
        let mut adj = AdjOut::default();
        adj.full(
            table(&[
                ("198.51.100.1/32", (*a).clone()),
                ("198.51.100.2/32", (*a).clone()),
            ]),
            ENC,
            true,
            false,
        );
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let msgs = adj.apply(
            vec![
                (net("198.51.100.1/32"), None),
                (net("198.51.100.2/32"), Some(b.clone())),
                (net("198.51.100.3/32"), Some(a.clone())),
                (net("198.51.100.9/32"), None),
            ],
            ENC,
        );
        assert_eq!(
            msgs.len(),
            3,
            "one withdrawal, one UPDATE per attribute set"
        );
        assert_eq!(&msgs[0][19..], &[0, 5, 32, 198, 51, 100, 1, 0, 0]);
        assert!(msgs[1].ends_with(&[32, 198, 51, 100, 3]));
        assert!(msgs[2].ends_with(&[32, 198, 51, 100, 2]));
        let keys: Vec<String> = adj.advertised().keys().map(ToString::to_string).collect();
        assert_eq!(keys, ["198.51.100.2/32", "198.51.100.3/32"]);
        assert!(
            adj.apply(vec![(net("198.51.100.3/32"), Some(a))], ENC)
                .is_empty(),
            "what the peer has already is not sent again"
        );
    }
}
