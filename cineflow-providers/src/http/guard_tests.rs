//! Unit tests of the address classifier, the policy, the resolver and the guard. Every answer is
//! injected: nothing here sends a packet, and nothing resolves a name through the system.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn metadata_private_and_loopback_addresses_are_refused_in_every_form() {
    for (addr, kind) in [
        ("169.254.169.254", Restricted::Metadata),
        ("100.100.100.200", Restricted::Metadata),
        ("fd00:ec2::254", Restricted::Metadata),
        ("::ffff:169.254.169.254", Restricted::Metadata),
        ("::169.254.169.254", Restricted::Metadata),
        ("64:ff9b::a9fe:a9fe", Restricted::Metadata),
        ("2002:a9fe:a9fe::1", Restricted::Metadata),
        ("127.0.0.1", Restricted::Loopback),
        ("127.255.3.4", Restricted::Loopback),
        ("::1", Restricted::Loopback),
        ("::ffff:127.0.0.1", Restricted::Loopback),
        ("10.1.2.3", Restricted::Private),
        ("172.16.0.1", Restricted::Private),
        ("172.31.255.255", Restricted::Private),
        ("192.168.1.1", Restricted::Private),
        ("::ffff:192.168.1.1", Restricted::Private),
        ("fc00::1", Restricted::Private),
        ("fd12:3456::1", Restricted::Private),
        ("169.254.10.1", Restricted::LinkLocal),
        ("fe80::1", Restricted::LinkLocal),
        ("100.64.0.1", Restricted::SharedAddressSpace),
        ("100.127.255.254", Restricted::SharedAddressSpace),
        ("0.0.0.0", Restricted::Unspecified),
        ("::", Restricted::Unspecified),
        ("224.0.0.1", Restricted::Multicast),
        ("ff02::1", Restricted::Multicast),
        ("255.255.255.255", Restricted::Broadcast),
        ("192.0.2.7", Restricted::Documentation),
        ("2001:db8::1", Restricted::Documentation),
        ("240.0.0.1", Restricted::Reserved),
        ("198.18.0.1", Restricted::Reserved),
    ] {
        assert_eq!(restricted(ip(addr)), Some(kind), "{addr}");
        assert!(!NetworkPolicy::new().allows_ip(ip(addr)), "{addr}");
    }
}

#[test]
fn public_addresses_are_allowed() {
    for addr in [
        "8.8.8.8",
        "93.184.216.34",
        "172.32.0.1",
        "100.128.0.1",
        "169.253.1.1",
        "2606:4700::1111",
        "::ffff:8.8.8.8",
    ] {
        assert_eq!(restricted(ip(addr)), None, "{addr}");
        assert!(NetworkPolicy::new().allows_ip(ip(addr)), "{addr}");
    }
}

#[test]
fn the_allow_list_opens_only_what_it_names() {
    let p = NetworkPolicy::new().allow_loopback();
    assert!(p.allows_ip(ip("127.0.0.1")) && p.allows_ip(ip("::1")));
    assert!(p.allows_ip(ip("::ffff:127.0.0.1")));
    assert!(!p.allows_ip(ip("169.254.169.254")) && !p.allows_ip(ip("10.0.0.1")));

    let p = NetworkPolicy::new()
        .allow_network("10.20.0.0/16")
        .unwrap()
        .allow_host("Minio.Internal.")
        .allow_host("192.168.1.20");
    assert!(p.allows_ip(ip("10.20.9.9")) && p.allows_ip(ip("::ffff:10.20.0.1")));
    assert!(!p.allows_ip(ip("10.21.0.1")));
    assert!(p.allows_ip(ip("192.168.1.20")) && !p.allows_ip(ip("192.168.1.21")));
    assert!(!p.allows_ip(ip("127.0.0.1")));
    assert!(p.allows_host("minio.internal") && !p.allows_host("other.internal"));

    assert!(NetworkPolicy::unrestricted().allows_ip(ip("169.254.169.254")));
    for bad in ["10.0.0.0/33", "not-an-ip/8", "::1/129"] {
        assert!(NetworkPolicy::new().allow_network(bad).is_err(), "{bad}");
    }
}

#[test]
fn allow_lists_parse_from_text_and_name_a_bad_entry() {
    let p = NetworkPolicy::new()
        .allow_list("loopback, 10.0.0.0/8 fd12::/16,minio.internal")
        .unwrap();
    assert!(p.allows_ip(ip("127.0.0.1")) && p.allows_ip(ip("10.9.9.9")));
    assert!(p.allows_ip(ip("fd12::5")) && p.allows_host("minio.internal"));
    assert!(!p.allows_ip(ip("169.254.169.254")));
    assert!(
        NetworkPolicy::new()
            .allow_list("any")
            .unwrap()
            .is_unrestricted()
    );
    let e = NetworkPolicy::new()
        .allow_list("loopback,http://x")
        .unwrap_err();
    assert!(e.to_string().contains("http://x"), "{e}");
}

#[tokio::test]
async fn the_resolver_drops_refused_addresses_and_fails_when_none_is_left() {
    let api = url("https://api.vendor.example/v1");
    let guard = Guard::guarded(NetworkPolicy::new(), &api).with_lookup(vec![
        ("metadata.google.internal", vec![ip("169.254.169.254")]),
        ("mixed.example", vec![ip("10.0.0.7"), ip("93.184.216.34")]),
        ("api.vendor.example", vec![ip("10.0.0.8")]),
        ("rebind.example", vec![ip("::ffff:127.0.0.1")]),
    ]);
    let r = guard.resolver();
    let e = r
        .resolve_name("metadata.google.internal".into())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("169.254.169.254"), "{e}");
    assert!(e.to_string().contains("metadata"), "{e}");
    assert!(r.resolve_name("rebind.example".into()).await.is_err());
    assert_eq!(
        r.resolve_name("mixed.example".into()).await.unwrap(),
        vec![ip("93.184.216.34")]
    );
    // The API's own host is the user's choice: resolved unfiltered.
    assert_eq!(
        r.resolve_name("api.vendor.example".into()).await.unwrap(),
        vec![ip("10.0.0.8")]
    );
}

#[tokio::test]
async fn ip_literal_hosts_are_checked_before_any_request() {
    let api = url("https://api.vendor.example/v1");
    let guard = Guard::guarded(NetworkPolicy::new(), &api).with_lookup(vec![]);
    for bad in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest",
        "http://100.100.100.200/latest/meta-data",
        "http://[::ffff:a9fe:a9fe]/",
        "http://2852039166/",
        "http://10.0.0.1:8080/v.mp4",
        "http://127.0.0.1:9/v.mp4",
        "http://[::1]/v.mp4",
    ] {
        let e = guard.check(&url(bad)).await.unwrap_err();
        assert!(e.to_string().starts_with("refused:"), "{bad}: {e}");
    }
    // Names are left to the resolver; the API's origin is always allowed.
    assert!(guard.check(&url("https://cdn.example/v.mp4")).await.is_ok());
    assert!(
        guard
            .check(&url("https://api.vendor.example/v1/videos/1/content"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn another_origin_on_the_api_host_is_resolved_and_checked() {
    let api = url("http://localhost:5100");
    let guard = Guard::guarded(NetworkPolicy::new(), &api)
        .with_lookup(vec![("localhost", vec![ip("127.0.0.1"), ip("::1")])]);
    assert!(
        guard
            .check(&url("http://localhost:5100/v.mp4"))
            .await
            .is_ok()
    );
    assert!(
        guard
            .check(&url("http://localhost:5101/v.mp4"))
            .await
            .is_err()
    );
    assert!(
        guard
            .without_origin()
            .check(&url("http://localhost:5100/a.png"))
            .await
            .is_err(),
        "a reference image gets no exemption"
    );
}

#[tokio::test]
async fn a_client_given_by_the_user_has_its_names_checked_before_the_request() {
    let api = url("https://api.vendor.example/v1");
    let guard = Guard::unguarded_client(NetworkPolicy::new(), Some(&api)).with_lookup(vec![
        (
            "metadata.internal",
            vec![ip("93.184.216.34"), ip("169.254.169.254")],
        ),
        ("cdn.example", vec![ip("93.184.216.34")]),
    ]);
    assert!(!guard.resolver_checks());
    assert!(
        guard
            .check(&url("http://metadata.internal/"))
            .await
            .is_err()
    );
    assert!(guard.check(&url("https://cdn.example/v.mp4")).await.is_ok());
    let allowed = Guard::unguarded_client(
        NetworkPolicy::new().allow_host("metadata.internal"),
        Some(&api),
    );
    assert!(
        allowed
            .check(&url("http://metadata.internal/"))
            .await
            .is_ok()
    );
}

#[test]
fn refusals_are_found_among_an_errors_sources() {
    #[derive(Debug)]
    struct Wrapper(AddressRefused);
    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("connect failed")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let refused = AddressRefused::address("x", ip("10.0.0.1"), Restricted::Private);
    let e = Wrapper(refused.clone());
    assert_eq!(refusal_in(&e), Some(&refused));
    assert_eq!(refusal_in(&io::Error::other("x")), None);
}
