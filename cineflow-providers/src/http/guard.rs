//! Which addresses video downloads and reference-image fetches may reach ([`NetworkPolicy`]),
//! and the guard that enforces it on the address actually connected.
//!
//! By default nothing fetches a loopback, private, link-local, metadata or otherwise
//! non-public address ([`restricted`]); the vendor's API origin (its base URL) is always
//! allowed, for API calls and same-origin downloads. The guard sits in three places of the
//! client an adapter builds itself:
//!
//! - a DNS resolver that drops refused addresses from every answer (a name that resolves only to
//!   refused addresses fails to connect), so the address checked is the address connected;
//! - a check of IP-literal hosts (which skip the resolver) before the first request;
//! - a redirect policy that checks every hop the same way (at most [`MAX_REDIRECTS`]).
//!
//! A client given with `with_http_client` cannot carry that resolver: its URLs are resolved and
//! checked before the request, and the final URL after redirects is checked again before its
//! body is used. That leaves a DNS-rebinding window (the name may resolve elsewhere at connect
//! time) and lets the client's own redirect policy send requests that are refused only
//! afterwards. Environment proxies (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) resolve names
//! themselves: when one is set, names are likewise resolved and checked here before the request
//! and on the final URL (IP literals are still checked on every hop), and the proxy's own egress
//! policy should do the rest.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use cineflow_core::Error;
use url::{Host, Url};

use super::same_origin;

/// The environment variable read by the builders' `load_env` / `from_env`: a comma- or
/// space-separated allow-list added to the [`NetworkPolicy`] (syntax of
/// [`NetworkPolicy::allow_list`]), e.g. `loopback,10.20.0.0/16,minio.internal`.
pub const NETWORK_ALLOW_VAR: &str = "CINEFLOW_NETWORK_ALLOW";

/// Most redirects followed by one request.
pub const MAX_REDIRECTS: usize = 5;

/// Why an address is refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restricted {
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16`, `fc00::/7`, `fec0::/10`,
    /// `64:ff9b:1::/48`.
    Private,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud metadata service: `169.254.169.254`, `fd00:ec2::254`, `100.100.100.200`.
    Metadata,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedAddressSpace,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Other special-purpose ranges: `192.0.0.0/24`, `198.18.0.0/15`, `240.0.0.0/4`,
    /// `100::/64`, Teredo `2001::/32`.
    Reserved,
}

impl fmt::Display for Restricted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Restricted::Loopback => "a loopback address",
            Restricted::Private => "a private address",
            Restricted::LinkLocal => "a link-local address",
            Restricted::Metadata => "a cloud metadata address",
            Restricted::SharedAddressSpace => "a carrier-grade NAT address",
            Restricted::Unspecified => "an unspecified address",
            Restricted::Multicast => "a multicast address",
            Restricted::Broadcast => "the broadcast address",
            Restricted::Documentation => "a documentation address",
            Restricted::Reserved => "a reserved address",
        })
    }
}

/// Why `ip` is refused by default, or `None` for a public address. IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4
/// (`2002::/16`) forms are judged by the IPv4 address they carry.
pub fn restricted(ip: IpAddr) -> Option<Restricted> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<Restricted> {
    let [a, b, c, _] = ip.octets();
    let r = match (a, b, c) {
        _ if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) => {
            Restricted::Metadata
        }
        (0, ..) => Restricted::Unspecified,
        (127, ..) => Restricted::Loopback,
        (10, ..) | (192, 168, _) => Restricted::Private,
        (172, 16..=31, _) => Restricted::Private,
        (169, 254, _) => Restricted::LinkLocal,
        (100, 64..=127, _) => Restricted::SharedAddressSpace,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Restricted::Documentation,
        (192, 0, 0) | (198, 18..=19, _) => Restricted::Reserved,
        (224..=239, ..) => Restricted::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => Restricted::Broadcast,
        (240..=255, ..) => Restricted::Reserved,
        _ => return None,
    };
    Some(r)
}

fn restricted_v6(ip: Ipv6Addr) -> Option<Restricted> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if let Some(v4) = ip.to_ipv4_mapped() {
        return restricted_v4(v4);
    }
    let r = match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => Restricted::Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => Restricted::Loopback,
        // IPv4-compatible (deprecated) and NAT64 well-known prefix: judge the IPv4 address.
        [0, 0, 0, 0, 0, 0, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return restricted_v4(embedded(hi, lo));
        }
        [0x2002, hi, lo, ..] => return restricted_v4(embedded(hi, lo)),
        [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] => Restricted::Metadata,
        [0x64, 0xff9b, 1, ..] => Restricted::Private,
        [x, ..] if x & 0xfe00 == 0xfc00 || x & 0xffc0 == 0xfec0 => Restricted::Private,
        [x, ..] if x & 0xffc0 == 0xfe80 => Restricted::LinkLocal,
        [x, ..] if x & 0xff00 == 0xff00 => Restricted::Multicast,
        [0x2001, 0xdb8, ..] => Restricted::Documentation,
        [0x3fff, y, ..] if y & 0xf000 == 0 => Restricted::Documentation,
        [0x100, 0, 0, 0, ..] | [0x2001, 0, ..] => Restricted::Reserved,
        _ => return None,
    };
    Some(r)
}

/// An IP network (`10.20.0.0/16`, `fd12::/16`); a bare address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNetwork {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("invalid network {s:?}: {why}"));
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| bad("expected an IP address or CIDR, e.g. 10.0.0.0/8"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad(&format!("the prefix length must be 0..={max}")))?,
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which addresses video downloads and reference-image fetches may reach, beyond public ones.
///
/// The default ([`new`](Self::new)) refuses every [`restricted`] address: loopback, private,
/// link-local, cloud metadata, carrier-grade NAT, unspecified, multicast, broadcast,
/// documentation and reserved ranges, in IPv4 and every IPv6 form. The vendor's API origin is
/// always allowed whatever the policy (the user chose it). Everything else must be allowed
/// explicitly, e.g. a MinIO bucket on the LAN or a fake CDN in tests:
///
/// ```
/// use cineflow_providers::http::NetworkPolicy;
///
/// let policy = NetworkPolicy::new()
///     .allow_loopback()
///     .allow_host("minio.internal")
///     .allow_network("10.20.0.0/16")?;
/// # Ok::<(), cineflow_core::Error>(())
/// ```
///
/// Every HTTP adapter's builder takes one with `with_network_policy`, and adds the allow-list
/// in [`NETWORK_ALLOW_VAR`] when it reads the environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    any: bool,
    loopback: bool,
    hosts: Vec<String>,
    networks: Vec<IpNetwork>,
}

impl NetworkPolicy {
    /// The default policy: only public addresses (and the vendor's API origin).
    pub fn new() -> Self {
        Self::default()
    }

    /// A policy that allows every address: the guard is off. For trusted deployments only.
    pub fn unrestricted() -> Self {
        Self {
            any: true,
            ..Self::default()
        }
    }

    /// Also allows loopback addresses (`127.0.0.0/8`, `::1`): local test servers.
    pub fn allow_loopback(mut self) -> Self {
        self.loopback = true;
        self
    }

    /// Also allows a host name (case-insensitive, exact: no subdomains) whatever it resolves to,
    /// and an IP literal given here as that address.
    pub fn allow_host(mut self, host: impl AsRef<str>) -> Self {
        let host = normalize_host(host.as_ref());
        if let Ok(ip) = host.parse::<IpAddr>() {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            self.networks.push(IpNetwork {
                addr: ip.to_canonical(),
                prefix,
            });
        } else if !host.is_empty() && !self.hosts.contains(&host) {
            self.hosts.push(host);
        }
        self
    }

    /// Also allows an IP network in CIDR notation (`10.20.0.0/16`) or a single address.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `cidr` is not an address with an optional prefix length.
    pub fn allow_network(mut self, cidr: &str) -> Result<Self, Error> {
        self.networks.push(cidr.parse()?);
        Ok(self)
    }

    /// Adds an allow-list written as text (the syntax of [`NETWORK_ALLOW_VAR`]): entries
    /// separated by commas or white space, each `loopback`, `any` (allows everything), an IP
    /// network or address (`10.0.0.0/8`, `fd12::/16`, `192.168.1.20`), or a host name.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the entry that is neither.
    pub fn allow_list(mut self, list: &str) -> Result<Self, Error> {
        for entry in list.split([',', ' ', '\t', '\n']).filter(|e| !e.is_empty()) {
            match entry.to_ascii_lowercase().as_str() {
                "loopback" => self.loopback = true,
                "any" => self.any = true,
                e if e.contains('/') || e.parse::<IpAddr>().is_ok() => {
                    self = self.allow_network(e)?;
                }
                e if is_host_name(e) => self = self.allow_host(e),
                _ => {
                    return Err(Error::Config(format!(
                        "network allow-list entry {entry:?} is not `loopback`, `any`, an IP \
                         network or a host name"
                    )));
                }
            }
        }
        Ok(self)
    }

    /// Whether `ip` may be reached.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match restricted(ip) {
            None => true,
            Some(_) if self.any => true,
            Some(Restricted::Loopback) if self.loopback => true,
            Some(_) => self.networks.iter().any(|n| n.contains(ip)),
        }
    }

    /// Whether the host name `host` is allowed whatever it resolves to.
    pub fn allows_host(&self, host: &str) -> bool {
        self.any || self.hosts.contains(&normalize_host(host))
    }

    /// Whether everything is allowed ([`unrestricted`](Self::unrestricted)).
    pub fn is_unrestricted(&self) -> bool {
        self.any
    }

    /// Why `ip` is refused, or `None` when it may be reached.
    fn refusal(&self, ip: IpAddr) -> Option<Restricted> {
        if self.allows_ip(ip) {
            None
        } else {
            restricted(ip.to_canonical())
        }
    }
}

fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

// ---------------------------------------------------------------------------------------------
// The refusal
// ---------------------------------------------------------------------------------------------

/// A destination the [`NetworkPolicy`] refuses. It is the error of the guarded resolver and
/// redirect policy, found again in a `reqwest::Error`'s sources by [`refusal_in`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressRefused {
    host: String,
    why: String,
}

impl AddressRefused {
    fn address(host: &str, ip: IpAddr, kind: Restricted) -> Self {
        let why = if host.trim_start_matches('[').trim_end_matches(']') == ip.to_string() {
            format!("is {kind}")
        } else {
            format!("resolves to {ip}, {kind}")
        };
        Self {
            host: host.to_owned(),
            why,
        }
    }

    fn api_host(url: &Url) -> Self {
        Self {
            host: url.host_str().unwrap_or_default().to_owned(),
            why: format!(
                "is the API's host but {} is not the API's origin, and a redirect cannot be \
                 checked there",
                url.origin().ascii_serialization()
            ),
        }
    }

    fn too_many_redirects() -> Self {
        Self {
            host: String::new(),
            why: format!("more than {MAX_REDIRECTS} redirects"),
        }
    }
}

impl fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.is_empty() {
            return write!(f, "refused: {}", self.why);
        }
        write!(
            f,
            "refused: {} {}; loopback, private, link-local and metadata addresses are reached \
             only when allowed (with_network_policy, or {NETWORK_ALLOW_VAR})",
            self.host, self.why
        )
    }
}

impl std::error::Error for AddressRefused {}

/// The [`AddressRefused`] among an error's sources, if any.
pub(crate) fn refusal_in<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a AddressRefused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<AddressRefused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Name resolution
// ---------------------------------------------------------------------------------------------

type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> + Send + Sync,
>;

/// The system resolver (`getaddrinfo` on tokio's blocking pool).
fn system_lookup() -> Lookup {
    Arc::new(|name: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

/// A reqwest resolver that drops every address the policy refuses: a name left without
/// addresses fails with [`AddressRefused`]. Names in `exempt` (the API's host) and hosts the
/// policy allows are resolved unfiltered.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
    exempt: Option<String>,
    lookup: Lookup,
}

impl GuardedResolver {
    /// The addresses of `name` the policy allows: a failed look-up is passed on as it is, and a
    /// name whose every address is refused is an [`AddressRefused`].
    async fn resolve_name(
        &self,
        name: String,
    ) -> Result<Vec<IpAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let host = normalize_host(&name);
        let found = (self.lookup)(name.clone()).await?;
        if self.exempt.as_deref() == Some(host.as_str()) || self.policy.allows_host(&host) {
            return Ok(found);
        }
        let first_refused = found
            .iter()
            .find_map(|ip| self.policy.refusal(*ip).map(|r| (*ip, r)));
        let kept: Vec<IpAddr> = found
            .into_iter()
            .filter(|ip| self.policy.allows_ip(*ip))
            .collect();
        match first_refused {
            Some((ip, kind)) if kept.is_empty() => {
                Err(AddressRefused::address(&name, ip, kind).into())
            }
            Some((ip, kind)) => {
                tracing::debug!(host = %name, %ip, %kind, "dropped a refused address");
                Ok(kept)
            }
            None => Ok(kept),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let ips = this.resolve_name(name).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The guard
// ---------------------------------------------------------------------------------------------

/// Whether reqwest will send requests through a proxy from the environment.
fn env_proxy_set() -> bool {
    [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// What a URL's host needs before it may be requested.
enum Check {
    /// Allowed as it is (or checked by the guarded resolver when it connects).
    Allowed,
    /// Refused.
    Refused(AddressRefused),
    /// A host name whose addresses must be resolved and checked here.
    Resolve(String),
}

/// The policy of one client, as requests use it: the origin always allowed for them, the name
/// its [`GuardedResolver`] exempts (the API's host), and whether that resolver sees every name
/// the client connects to.
#[derive(Clone)]
pub(crate) struct Guard {
    policy: Arc<NetworkPolicy>,
    origin: Option<Url>,
    exempt: Option<String>,
    resolver_checks: bool,
    lookup: Lookup,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("policy", &self.policy)
            .field("origin", &self.origin.as_ref().map(Url::as_str))
            .field("resolver_checks", &self.resolver_checks)
            .finish()
    }
}

impl Guard {
    /// The guard of a client this crate built with [`resolver`](Self::resolver) and
    /// [`redirect_policy`](Self::redirect_policy): `api` is the vendor's base URL.
    ///
    /// When an environment proxy is set, names are resolved by the proxy, not by the resolver:
    /// they are then resolved and checked before the request, as for a client given by the user.
    pub(crate) fn guarded(policy: NetworkPolicy, api: &Url) -> Self {
        let exempt = match api.host() {
            Some(Host::Domain(d)) => Some(normalize_host(d)),
            _ => None,
        };
        Self {
            policy: Arc::new(policy),
            origin: Some(api.clone()),
            exempt,
            resolver_checks: !env_proxy_set(),
            lookup: system_lookup(),
        }
    }

    /// The guard of a client given by the user: names are resolved and checked before each
    /// request, and the final URL again after redirects. `api` is always allowed.
    pub(crate) fn unguarded_client(policy: NetworkPolicy, api: Option<&Url>) -> Self {
        Self {
            policy: Arc::new(policy),
            origin: api.cloned(),
            exempt: None,
            resolver_checks: false,
            lookup: system_lookup(),
        }
    }

    /// The same guard without an always-allowed origin (reference images).
    pub(crate) fn without_origin(&self) -> Self {
        Self {
            origin: None,
            ..self.clone()
        }
    }

    /// Whether the client's resolver checks every name it connects to.
    #[cfg(test)]
    fn resolver_checks(&self) -> bool {
        self.resolver_checks
    }

    /// The resolver of this guard's client (it exempts the API's host name).
    pub(crate) fn resolver(&self) -> GuardedResolver {
        GuardedResolver {
            policy: self.policy.clone(),
            exempt: self.exempt.clone(),
            lookup: self.lookup.clone(),
        }
    }

    /// The redirect policy of this guard's client: at most [`MAX_REDIRECTS`] hops, each to the
    /// API's origin, to an allowed IP literal, or to a host name the resolver checks (through an
    /// environment proxy, the final URL is checked instead: [`check_final`](Self::check_final)).
    /// Another origin on the API's host is refused: the resolver does not check that name, and
    /// a redirect cannot wait for a look-up.
    pub(crate) fn redirect_policy(&self) -> reqwest::redirect::Policy {
        let guard = self.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(AddressRefused::too_many_redirects());
            }
            match guard.check_host(attempt.url()) {
                Check::Allowed => attempt.follow(),
                Check::Refused(e) => attempt.error(e),
                Check::Resolve(name) if guard.exempt == Some(normalize_host(&name)) => {
                    let e = AddressRefused::api_host(attempt.url());
                    attempt.error(e)
                }
                Check::Resolve(_) => attempt.follow(),
            }
        })
    }

    fn check_host(&self, url: &Url) -> Check {
        if self.origin.as_ref().is_some_and(|o| same_origin(o, url)) {
            return Check::Allowed;
        }
        match url.host() {
            None => Check::Allowed,
            Some(Host::Ipv4(ip)) => self.check_ip(url, IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(url, IpAddr::V6(ip)),
            Some(Host::Domain(d)) => {
                let host = normalize_host(d);
                if self.policy.allows_host(&host) {
                    return Check::Allowed;
                }
                // The resolver checks every name but the API's own.
                if self.resolver_checks && self.exempt.as_deref() != Some(host.as_str()) {
                    Check::Allowed
                } else {
                    Check::Resolve(d.to_owned())
                }
            }
        }
    }

    fn check_ip(&self, url: &Url, ip: IpAddr) -> Check {
        match self.policy.refusal(ip) {
            None => Check::Allowed,
            Some(kind) => Check::Refused(AddressRefused::address(
                url.host_str().unwrap_or_default(),
                ip,
                kind,
            )),
        }
    }

    /// Checks a URL before it is requested: its host must be allowed, and a host name the
    /// resolver does not check is resolved here and must have no refused address.
    pub(crate) async fn check(&self, url: &Url) -> Result<(), AddressRefused> {
        match self.check_host(url) {
            Check::Allowed => Ok(()),
            Check::Refused(e) => Err(e),
            Check::Resolve(name) => {
                // A failed look-up is not a refusal: the request fails as it would have.
                let found = (self.lookup)(name.clone()).await.unwrap_or_default();
                match found
                    .iter()
                    .find_map(|ip| self.policy.refusal(*ip).map(|r| (*ip, r)))
                {
                    Some((ip, kind)) => Err(AddressRefused::address(&name, ip, kind)),
                    None => Ok(()),
                }
            }
        }
    }

    /// Checks where a response came from when the resolver could not: the final URL after
    /// redirects, when it differs from `requested` (a client given by the user, or an
    /// environment proxy).
    pub(crate) async fn check_final(
        &self,
        requested: &Url,
        resp: &reqwest::Response,
    ) -> Result<(), AddressRefused> {
        if self.resolver_checks || resp.url() == requested {
            return Ok(());
        }
        self.check(resp.url()).await
    }

    #[cfg(test)]
    fn with_lookup(mut self, answers: Vec<(&'static str, Vec<IpAddr>)>) -> Self {
        let answers = Arc::new(answers);
        self.lookup = Arc::new(move |name: String| {
            let found = answers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, ips)| ips.clone());
            Box::pin(async move { found.ok_or_else(|| io::Error::other("no such name")) })
        });
        self
    }
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
