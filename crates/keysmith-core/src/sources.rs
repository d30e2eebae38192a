//! Where a key may be used from: an optional allowlist of source networks per key.
//!
//! A key generated with `--allow-from 203.0.113.0/24 --allow-from 2001:db8::/32` is refused
//! by the verifier (403, `Denial::SourceRefused`) for a request from any other address, and
//! for a request whose client address the verifier cannot establish. The verifier takes that
//! address from the connection, or from `X-Forwarded-For` only when the connection comes from
//! a proxy it was told to trust (`keysmith-verifier`'s `ClientAddress`).
//!
//! The list is fixed for the key's life (a roll keeps it) and covered by the row's MAC, so a
//! list widened in the database outside Keysmith is refused as a changed row.
//!
//! Entries are IPv4 or IPv6 networks in CIDR notation (RFC 4632, RFC 4291 §2.3), or bare
//! addresses (a /32 or /128). A network with bits set past its prefix (`10.1.2.3/8`) is
//! refused rather than guessed at. IPv4-mapped IPv6 client addresses (`::ffff:192.0.2.1`,
//! RFC 4291 §2.5.5.2) are matched as the IPv4 address they carry.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::error::{Error, Result};

/// Most networks one key may list.
pub const MAX_SOURCES: usize = 32;
/// Longest entry accepted before parsing, in bytes (the longest IPv6 CIDR is 43).
const MAX_ENTRY_LEN: usize = 64;

/// A key's source allowlist: empty means any address. Kept in canonical form (networks
/// without host bits, duplicates removed, in the order given).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedSources(Vec<IpNet>);

impl AllowedSources {
    /// Any address (no allowlist).
    pub fn any() -> AllowedSources {
        AllowedSources(Vec::new())
    }

    /// Parses what a person typed: each item one network or address; items may also hold
    /// several entries separated by commas or whitespace (a pasted list). Empty items are
    /// skipped; no entries at all means any address.
    ///
    /// # Errors
    /// [`Error::InvalidAddress`] naming the first bad entry, or saying the list is longer
    /// than [`MAX_SOURCES`].
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<AllowedSources> {
        let mut nets: Vec<IpNet> = Vec::new();
        for entry in items
            .iter()
            .flat_map(|i| i.as_ref().split(|c: char| c == ',' || c.is_whitespace()))
            .filter(|e| !e.is_empty())
        {
            let net = parse_entry(entry)?;
            if !nets.contains(&net) {
                nets.push(net);
            }
            if nets.len() > MAX_SOURCES {
                return Err(Error::InvalidAddress(format!(
                    "A key can list at most {MAX_SOURCES} allowed addresses or networks."
                )));
            }
        }
        Ok(AllowedSources(nets))
    }

    /// Reads the stored form ([`AllowedSources::stored`]): `None` is any address.
    ///
    /// # Errors
    /// [`Error::InvalidAddress`] for a stored value Keysmith did not write.
    pub fn from_stored(stored: Option<&str>) -> Result<AllowedSources> {
        match stored {
            None => Ok(AllowedSources::any()),
            Some(text) => {
                let parsed = AllowedSources::parse(&[text])?;
                if parsed.0.is_empty() {
                    return Err(Error::InvalidAddress(
                        "An empty allowed-address list is stored as no list.".into(),
                    ));
                }
                Ok(parsed)
            }
        }
    }

    /// The column's value: the networks separated by single spaces, `None` for any address.
    pub fn stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.to_string())
    }

    /// Whether no allowlist applies.
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// The networks, canonical (`203.0.113.0/24`, `2001:db8::/32`; bare addresses as /32
    /// and /128).
    pub fn networks(&self) -> &[IpNet] {
        &self.0
    }

    /// The networks as text, for summaries.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }

    /// Whether a request from `client` may use the key. With an allowlist, an unknown client
    /// address is refused.
    pub fn allows(&self, client: Option<IpAddr>) -> bool {
        allows(&self.0, client)
    }
}

/// The networks of a stored list ([`AllowedSources::stored`]) as text, for summaries:
/// empty for `None` (anywhere).
pub fn stored_networks(stored: Option<&str>) -> Vec<String> {
    stored
        .map(|list| list.split(' ').map(str::to_owned).collect())
        .unwrap_or_default()
}

/// [`AllowedSources::allows`] over a slice of networks (the verifier's index holds them
/// without the wrapper).
pub fn allows(nets: &[IpNet], client: Option<IpAddr>) -> bool {
    if nets.is_empty() {
        return true;
    }
    let Some(client) = client else {
        return false;
    };
    let client = client.to_canonical();
    nets.iter().any(|n| n.contains(&client))
}

impl fmt::Display for AllowedSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, n) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

fn parse_entry(entry: &str) -> Result<IpNet> {
    // Quoted (escaped) and cut at 32 characters: the message stays short whatever was typed.
    let mut shown: String = entry.chars().take(32).collect();
    if shown.len() < entry.len() {
        shown.push('…');
    }
    let bad = |why: &str| Error::InvalidAddress(format!("{shown:?} {why}"));
    if entry.len() > MAX_ENTRY_LEN {
        return Err(bad("is too long to be an address or network."));
    }
    let net = if entry.contains('/') {
        let net = IpNet::from_str(entry).map_err(|_| {
            bad("is not an IPv4 or IPv6 network in CIDR notation (such as 203.0.113.0/24 or 2001:db8::/32).")
        })?;
        if net.trunc() != net {
            return Err(Error::InvalidAddress(format!(
                "{shown:?} has bits set past its /{} prefix: did you mean {}?",
                net.prefix_len(),
                net.trunc()
            )));
        }
        net
    } else {
        let addr = IpAddr::from_str(entry).map_err(|_| {
            bad("is not an IPv4 or IPv6 address or network (such as 203.0.113.7 or 203.0.113.0/24).")
        })?;
        IpNet::from(addr)
    };
    // An IPv4-mapped IPv6 network names IPv4 addresses: keep it in the form clients are
    // matched in.
    Ok(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96).unwrap_or(net),
            None => net,
        },
        _ => net,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(items: &[&str]) -> std::result::Result<String, String> {
        AllowedSources::parse(items)
            .map(|s| s.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn entries_parse_to_their_canonical_networks() {
        let table: &[(&[&str], &str)] = &[
            (&[], ""),
            (&["", "  "], ""),
            (&["203.0.113.0/24"], "203.0.113.0/24"),
            (&["203.0.113.7"], "203.0.113.7/32"),
            (&["2001:db8::/32"], "2001:db8::/32"),
            (&["2001:DB8:0:0::1"], "2001:db8::1/128"),
            (&["0.0.0.0/0"], "0.0.0.0/0"),
            (&["::/0"], "::/0"),
            (&["10.0.0.0/8, 192.168.0.0/16"], "10.0.0.0/8 192.168.0.0/16"),
            (&["10.0.0.0/8\n10.0.0.0/8", "10.0.0.0/8"], "10.0.0.0/8"),
            (&["::ffff:192.0.2.0/120"], "192.0.2.0/24"),
            (&["::ffff:192.0.2.9"], "192.0.2.9/32"),
        ];
        for (items, want) in table {
            assert_eq!(canon(items).as_deref(), Ok(*want), "{items:?}");
        }
    }

    #[test]
    fn bad_entries_are_refused_naming_the_value() {
        let table: &[(&str, &str)] = &[
            ("10.1.2.3/8", "did you mean 10.0.0.0/8?"),
            ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
            ("10.0.0.0/33", "not an IPv4 or IPv6 network"),
            ("::/129", "not an IPv4 or IPv6 network"),
            ("10.0.0.0/", "not an IPv4 or IPv6 network"),
            ("/8", "not an IPv4 or IPv6 network"),
            ("10.0.0.0/-1", "not an IPv4 or IPv6 network"),
            ("10.0.0.0/08x", "not an IPv4 or IPv6 network"),
            ("256.0.0.1", "not an IPv4 or IPv6 address"),
            ("10.0.0", "not an IPv4 or IPv6 address"),
            ("010.0.0.1", "not an IPv4 or IPv6 address"),
            ("0x7f.0.0.1", "not an IPv4 or IPv6 address"),
            ("2130706433", "not an IPv4 or IPv6 address"),
            ("localhost", "not an IPv4 or IPv6 address"),
            ("fe80::1%eth0", "not an IPv4 or IPv6 address"),
            ("[::1]", "not an IPv4 or IPv6 address"),
            ("10.0.0.1:80", "not an IPv4 or IPv6 address"),
            ("*", "not an IPv4 or IPv6 address"),
            ("10.0.0.1;rm", "not an IPv4 or IPv6 address"),
            ("１０.0.0.1", "not an IPv4 or IPv6 address"),
        ];
        for (entry, why) in table {
            let err = AllowedSources::parse(&[*entry]).expect_err(entry);
            assert!(matches!(err, Error::InvalidAddress(_)), "{entry}: {err:?}");
            let text = err.to_string();
            assert!(text.contains(&format!("{entry:?}")), "{entry}: {text}");
            assert!(text.contains(why), "{entry}: {text}");
        }
        let long = "1".repeat(10_000);
        let text = AllowedSources::parse(&[long.as_str()])
            .expect_err("long")
            .to_string();
        assert!(text.contains("too long") && text.len() < 200, "{text}");
    }

    #[test]
    fn more_than_the_limit_is_refused() {
        let nets: Vec<String> = (0..=MAX_SOURCES)
            .map(|i| format!("10.0.{i}.0/24"))
            .collect();
        assert!(AllowedSources::parse(&nets[..MAX_SOURCES]).is_ok());
        let err = AllowedSources::parse(&nets).expect_err("33 networks");
        assert!(err.to_string().contains("at most 32"), "{err}");
    }

    #[test]
    fn clients_match_only_inside_the_list() {
        let s = AllowedSources::parse(&["203.0.113.0/24", "2001:db8::/32"]).expect("parse");
        let ip = |t: &str| Some(IpAddr::from_str(t).expect(t));
        let table = [
            ("203.0.113.0", true),
            ("203.0.113.255", true),
            ("203.0.114.0", false),
            ("203.0.112.255", false),
            ("::ffff:203.0.113.9", true),
            ("::ffff:203.0.114.9", false),
            ("2001:db8:ffff::1", true),
            ("2001:db9::1", false),
            // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1) is not IPv4-mapped.
            ("::203.0.113.9", false),
            ("64:ff9b::cb00:7109", false),
        ];
        for (client, want) in table {
            assert_eq!(s.allows(ip(client)), want, "{client}");
        }
        assert!(!s.allows(None), "an unknown client address is refused");
        assert!(AllowedSources::any().allows(None));
        let mapped = AllowedSources::parse(&["::ffff:203.0.113.0/120"]).expect("parse");
        assert!(mapped.allows(ip("203.0.113.4")));
    }

    #[test]
    fn stored_form_round_trips() {
        assert_eq!(AllowedSources::any().stored(), None);
        assert_eq!(
            AllowedSources::from_stored(None).expect("none"),
            AllowedSources::any()
        );
        let s = AllowedSources::parse(&["2001:db8::/32", "10.0.0.7"]).expect("parse");
        let stored = s.stored().expect("stored");
        assert_eq!(stored, "2001:db8::/32 10.0.0.7/32");
        assert_eq!(AllowedSources::from_stored(Some(&stored)).expect("read"), s);
        assert!(AllowedSources::from_stored(Some("")).is_err());
        assert!(AllowedSources::from_stored(Some("10.1.1.1/8")).is_err());
    }

    proptest! {
        /// Any network's canonical text parses back to itself, and holds exactly the
        /// addresses its prefix covers.
        #[test]
        fn canonical_networks_round_trip(bits in any::<u32>(), len in 0u8..=32, probe in any::<u32>()) {
            let net = IpNet::new(IpAddr::from(std::net::Ipv4Addr::from(bits)), len).expect("len").trunc();
            let s = AllowedSources::parse(&[net.to_string()]).expect("canonical");
            prop_assert_eq!(s.networks(), &[net]);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let inside = probe & mask == bits & mask;
            prop_assert_eq!(s.allows(Some(IpAddr::from(std::net::Ipv4Addr::from(probe)))), inside);
        }

        #[test]
        fn v6_networks_round_trip(bits in any::<u128>(), len in 0u8..=128) {
            let net = IpNet::new(IpAddr::from(std::net::Ipv6Addr::from(bits)), len).expect("len").trunc();
            let parsed = AllowedSources::parse(&[net.to_string()]).expect("canonical");
            // A mapped network comes back as its IPv4 form; every other one as itself.
            let expected = parse_entry(&net.to_string()).expect("entry");
            prop_assert_eq!(parsed.networks(), &[expected]);
        }

        /// Whatever is typed, parsing returns a typed error or a list, never panics, and an
        /// error quotes at most 32 characters of the entry (each escaped to at most 10).
        #[test]
        fn arbitrary_text_never_panics(text in ".{0,200}") {
            match AllowedSources::parse(&[text.as_str()]) {
                Ok(s) => prop_assert!(s.networks().len() <= MAX_SOURCES),
                Err(e) => {
                    prop_assert!(matches!(e, Error::InvalidAddress(_)));
                    prop_assert!(e.to_string().chars().count() < 500);
                }
            }
        }
    }
}
