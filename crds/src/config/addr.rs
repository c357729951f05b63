//! Address ranges as users write them in `IPAddressPool.spec.addresses`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Host prefix length: 32 or 128.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as an integer, with its family, so that ranges are plain arithmetic.
pub fn to_u128(ip: &IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(*a)),
        IpAddr::V6(a) => u128::from(*a),
    }
}

/// The inverse of [`to_u128`]; IPv4 values are truncated to 32 bits.
pub fn from_u128(family: Family, v: u128) -> IpAddr {
    match family {
        // Truncation is intended: callers only pass values taken from IPv4 ranges.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(v as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(v)),
    }
}

/// An inclusive range of addresses of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpRange {
    family: Family,
    start: u128,
    end: u128,
}

/// Why an `addresses` entry was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not a CIDR, range or address.
    #[error("{0:?} is not a CIDR (10.0.0.0/24), a range (10.0.0.1-10.0.0.9) or an address")]
    Syntax(String),
    /// Range ends of different families.
    #[error("{0:?} mixes IPv4 and IPv6")]
    MixedFamilies(String),
    /// Range whose start is after its end.
    #[error("{0:?} starts after it ends")]
    Reversed(String),
    /// `::/0`: 2^128 addresses cannot be counted exactly and are never meant.
    #[error("{0:?} covers the whole IPv6 space; use a prefix of /1 or longer")]
    WholeIpv6Space(String),
}

impl IpRange {
    /// A range from two addresses of the same family, `start <= end`.
    pub fn new(start: IpAddr, end: IpAddr) -> Option<Self> {
        let family = Family::of(&start);
        (family == Family::of(&end) && to_u128(&start) <= to_u128(&end)).then(|| IpRange {
            family,
            start: to_u128(&start),
            end: to_u128(&end),
        })
    }

    /// A range of one address.
    pub fn single(ip: IpAddr) -> Self {
        let v = to_u128(&ip);
        IpRange {
            family: Family::of(&ip),
            start: v,
            end: v,
        }
    }

    /// Parses `a.b.c.d/n`, `x::/n`, `a-b` (spaces around `-` allowed) or one address.
    /// A CIDR with host bits set means its network, as in MetalLB.
    pub fn parse(text: &str) -> Result<Self, RangeError> {
        let t = text.trim();
        if let Some((a, b)) = t.split_once('-') {
            let a: IpAddr = a
                .trim()
                .parse()
                .map_err(|_| RangeError::Syntax(text.into()))?;
            let b: IpAddr = b
                .trim()
                .parse()
                .map_err(|_| RangeError::Syntax(text.into()))?;
            if Family::of(&a) != Family::of(&b) {
                return Err(RangeError::MixedFamilies(text.into()));
            }
            return IpRange::new(a, b).ok_or_else(|| RangeError::Reversed(text.into()));
        }
        if t.contains('/') {
            let net: ipnet::IpNet = t.parse().map_err(|_| RangeError::Syntax(text.into()))?;
            if matches!(net, ipnet::IpNet::V6(_)) && net.prefix_len() == 0 {
                return Err(RangeError::WholeIpv6Space(text.into()));
            }
            let net = net.trunc();
            return IpRange::new(net.network(), net.broadcast())
                .ok_or_else(|| RangeError::Syntax(text.into()));
        }
        let ip: IpAddr = t.parse().map_err(|_| RangeError::Syntax(text.into()))?;
        Ok(IpRange::single(ip))
    }

    /// The family of every address in the range.
    pub fn family(&self) -> Family {
        self.family
    }

    /// First address.
    pub fn start(&self) -> IpAddr {
        from_u128(self.family, self.start)
    }

    /// Last address.
    pub fn end(&self) -> IpAddr {
        from_u128(self.family, self.end)
    }

    /// First and last address as integers.
    pub fn bounds(&self) -> (u128, u128) {
        (self.start, self.end)
    }

    /// Number of addresses. Exact: `::/0` is refused at parse time, so it fits.
    pub fn len(&self) -> u128 {
        (self.end - self.start).saturating_add(1)
    }

    /// Never true: a range holds at least one address.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        Family::of(ip) == self.family && (self.start..=self.end).contains(&to_u128(ip))
    }

    /// Whether the two ranges share an address.
    pub fn overlaps(&self, other: &IpRange) -> bool {
        self.family == other.family && self.start <= other.end && other.start <= self.end
    }

    /// The smallest set of CIDRs that covers exactly this range.
    pub fn to_cidrs(&self) -> Vec<ipnet::IpNet> {
        let bits = u32::from(self.family.bits());
        let mut out = Vec::new();
        let mut cur = self.start;
        loop {
            // Largest block aligned at `cur` that does not pass `end`.
            let align = if cur == 0 {
                bits
            } else {
                cur.trailing_zeros().min(bits)
            };
            let mut size_log = align;
            let mut last = block_last(cur, size_log);
            while size_log > 0 && last.is_none_or(|l| l > self.end) {
                size_log -= 1;
                last = block_last(cur, size_log);
            }
            // `bits - size_log` is at most 128, so the cast cannot truncate.
            let prefix = (bits - size_log) as u8;
            if let Ok(net) = ipnet::IpNet::new(from_u128(self.family, cur), prefix) {
                out.push(net);
            }
            let step_end = last.unwrap_or(cur);
            if step_end >= self.end {
                break;
            }
            cur = step_end + 1;
        }
        out
    }
}

/// Last address of the block of `2^size_log` addresses starting at `start`.
fn block_last(start: u128, size_log: u32) -> Option<u128> {
    if size_log >= 128 {
        (start == 0).then_some(u128::MAX)
    } else {
        start.checked_add((1u128 << size_log) - 1)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets = self.to_cidrs();
        match nets.as_slice() {
            [one] if one.prefix_len() < self.family.bits() => write!(f, "{one}"),
            _ if self.start == self.end => write!(f, "{}", self.start()),
            _ => write!(f, "{}-{}", self.start(), self.end()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(s: &str) -> IpRange {
        IpRange::parse(s).unwrap()
    }

    #[test]
    fn parses_every_form_metallb_accepts() {
        assert_eq!(r("192.168.10.0/24").len(), 256);
        assert_eq!(
            r("192.168.10.7/24").start(),
            "192.168.10.0".parse::<IpAddr>().unwrap()
        );
        assert_eq!(r("192.168.9.1-192.168.9.5").len(), 5);
        assert_eq!(r(" 192.168.9.1 - 192.168.9.5 ").len(), 5);
        assert_eq!(r("fc00:f853:ccd:e799::/124").len(), 16);
        assert_eq!(r("2001:db8::/64").len(), 1u128 << 64);
        assert_eq!(r("::/1").len(), 1u128 << 127);
        assert_eq!(r("10.1.1.1").len(), 1);
        assert_eq!(r("0.0.0.0/0").len(), 1u128 << 32);
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(matches!(
            IpRange::parse("10.0.0.0/33"),
            Err(RangeError::Syntax(_))
        ));
        assert!(matches!(
            IpRange::parse("banana"),
            Err(RangeError::Syntax(_))
        ));
        assert!(matches!(
            IpRange::parse("10.0.0.9-10.0.0.1"),
            Err(RangeError::Reversed(_))
        ));
        assert!(matches!(
            IpRange::parse("10.0.0.1-::1"),
            Err(RangeError::MixedFamilies(_))
        ));
        assert!(matches!(
            IpRange::parse("::/0"),
            Err(RangeError::WholeIpv6Space(_))
        ));
    }

    #[test]
    fn cidr_cover_of_a_range_is_minimal_and_exact() {
        let nets: Vec<String> = r("10.0.0.1-10.0.0.6")
            .to_cidrs()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(
            nets,
            ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/31", "10.0.0.6/32"]
        );
        let nets: Vec<String> = r("0.0.0.0/0")
            .to_cidrs()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["0.0.0.0/0"]);
        assert_eq!(r("::/1").to_cidrs().len(), 1);
    }

    #[test]
    fn display_is_the_shortest_form() {
        assert_eq!(r("10.0.0.0/24").to_string(), "10.0.0.0/24");
        assert_eq!(r("10.0.0.1-10.0.0.6").to_string(), "10.0.0.1-10.0.0.6");
        assert_eq!(r("10.0.0.1").to_string(), "10.0.0.1");
    }

    proptest! {
        #[test]
        fn cidr_cover_adds_up_to_the_range(a in any::<u32>(), b in any::<u32>()) {
            let (lo, hi) = (a.min(b), a.max(b));
            let range = IpRange::new(Ipv4Addr::from(lo).into(), Ipv4Addr::from(hi).into()).unwrap();
            let nets = range.to_cidrs();
            let total: u128 = nets.iter().map(|n| 1u128 << (32 - n.prefix_len())).sum();
            prop_assert_eq!(total, range.len());
            prop_assert_eq!(nets.first().unwrap().network(), range.start());
            prop_assert_eq!(nets.last().unwrap().broadcast(), range.end());
            prop_assert!(nets.len() <= 62);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = IpRange::parse(&s);
        }
    }
}
