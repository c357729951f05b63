//! What a session has told its peer, and the UPDATEs that bring the peer to a new
//! desired set (pure). Only differences are sent; prefixes sharing attributes go in
//! the same UPDATEs. Attributes are shared (`Arc`): 10,000 prefixes usually carry
//! a handful of distinct sets, and comparing two shared sets is a pointer test.

use std::collections::BTreeMap;
use std::sync::Arc;

use ipnet::IpNet;

use super::update::{Attrs, Encoding, announce, end_of_rib, withdraw};

/// What one peer has from us: how many prefixes. Which ones, with which
/// attributes, is the session's planned table seen through its plan (families,
/// next hops), so it is not kept twice: a map of 10,000 prefixes was 0.5 MB per
/// session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AdjOut {
    advertised: usize,
}

/// Desired routes with their (shared) attributes.
pub type Desired = BTreeMap<IpNet, Arc<Attrs>>;

/// One change to what a peer has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A prefix the peer does not have yet.
    Add(IpNet, Arc<Attrs>),
    /// A prefix the peer has, with other attributes.
    Replace(IpNet, Arc<Attrs>),
    /// A prefix the peer has.
    Withdraw(IpNet),
}

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
    /// How many prefixes the peer has from us.
    pub fn len(&self) -> usize {
        self.advertised
    }

    /// Whether the peer has none.
    pub fn is_empty(&self) -> bool {
        self.advertised == 0
    }

    /// Forgets everything (the session went down: the peer dropped our routes).
    pub fn clear(&mut self) {
        self.advertised = 0;
    }

    /// The UPDATEs that turn `had` (what the peer has) into `desired`:
    /// withdrawals first, then announcements grouped by attributes.
    pub fn diff(&mut self, had: &Desired, desired: &Desired, enc: Encoding) -> Vec<Vec<u8>> {
        let gone: Vec<IpNet> = had
            .keys()
            .filter(|p| !desired.contains_key(p))
            .copied()
            .collect();
        let mut groups: BTreeMap<(bool, &Attrs), Vec<IpNet>> = BTreeMap::new();
        for (p, a) in desired {
            if had.get(p) != Some(a) {
                groups.entry((is_v6(p), &**a)).or_default().push(*p);
            }
        }
        self.advertised = desired.len();
        encode(&gone, groups, enc)
    }

    /// The UPDATEs for `changes` alone; the rest of what is advertised stays.
    pub fn apply(&mut self, changes: Vec<Change>, enc: Encoding) -> Vec<Vec<u8>> {
        let mut gone = Vec::new();
        let mut groups: BTreeMap<(bool, Arc<Attrs>), Vec<IpNet>> = BTreeMap::new();
        for c in changes {
            match c {
                Change::Withdraw(p) => {
                    self.advertised = self.advertised.saturating_sub(1);
                    gone.push(p);
                }
                Change::Add(p, a) => {
                    self.advertised += 1;
                    groups.entry((is_v6(&p), a)).or_default().push(p);
                }
                Change::Replace(p, a) => {
                    groups.entry((is_v6(&p), a)).or_default().push(p);
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
    pub fn full(&mut self, desired: &Desired, enc: Encoding, v4: bool, v6: bool) -> Vec<Vec<u8>> {
        let mut out = self.diff(&Desired::new(), desired, enc);
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
        let first = adj.full(&want, ENC, true, false);
        let mut had = want.clone();
        assert_eq!(
            first.len(),
            2,
            "one UPDATE for both prefixes, then End-of-RIB"
        );
        // A new Service: one UPDATE carrying only its prefix (5 NLRI bytes).
        want.insert("198.51.100.3/32".parse().unwrap(), Arc::new(a.clone()));
        let next = adj.diff(&had, &want, ENC);
        had = want.clone();
        assert_eq!(next.len(), 1);
        assert_eq!(adj.len(), 3);
        assert!(next[0].ends_with(&[32, 198, 51, 100, 3]));
        assert_eq!(
            next[0].len(),
            19 + 4 + 20 + 5,
            "header, lengths, ORIGIN+AS_PATH+NEXT_HOP, one prefix"
        );
        // Nothing changed: nothing sent.
        assert!(adj.diff(&had, &want, ENC).is_empty());
        // One removed, one with a new community: a withdrawal and one announcement.
        want.remove(&"198.51.100.1/32".parse().unwrap());
        want.insert(
            "198.51.100.2/32".parse().unwrap(),
            Arc::new(attrs("10.0.0.11", vec![7])),
        );
        let msgs = adj.diff(&had, &want, ENC);
        assert_eq!(msgs.len(), 2);
        assert_eq!(adj.len(), 2);
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
        let msgs = adj.full(&want, ENC, true, true);
        assert_eq!(
            msgs.len(),
            3 + 2,
            "IPv4 with a, IPv4 with b, IPv6, and two End-of-RIBs"
        );
        assert_eq!(adj.len(), 5);
        adj.clear();
        assert!(adj.is_empty());
    }

    #[test]
    fn applied_changes_touch_only_their_prefixes() {
        let a = Arc::new(attrs("10.0.0.11", vec![]));
        let b = Arc::new(attrs("10.0.0.11", vec![9]));
        let mut adj = AdjOut::default();
        adj.full(
            &table(&[
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
                Change::Withdraw(net("198.51.100.1/32")),
                Change::Replace(net("198.51.100.2/32"), b.clone()),
                Change::Add(net("198.51.100.3/32"), a.clone()),
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
        assert_eq!(adj.len(), 2, "one withdrawn, one added");
        assert!(adj.apply(Vec::new(), ENC).is_empty());
    }
}
