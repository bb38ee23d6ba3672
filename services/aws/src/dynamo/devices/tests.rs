use switchboard_core::devices::contract::device;

use super::*;

#[test]
fn an_item_round_trips_to_the_same_device() {
    let device = device("acme", "alice", "https://push.example.com/send/a");
    let item = device_to_item(&device).unwrap();
    assert_eq!(item[PK].as_s().unwrap(), "D#acme");
    assert_eq!(item[SK].as_s().unwrap(), &format!("alice#{}", device.id));
    assert_eq!(item_to_device(&item).unwrap(), device);
}

#[test]
fn items_that_are_not_devices_are_refused() {
    let device = device("acme", "alice", "https://push.example.com/send/a");
    let good = device_to_item(&device).unwrap();
    for (name, value) in [
        (PK, AttributeValue::S("T#acme".into())),
        (SK, AttributeValue::S("alice".into())),
        (SK, AttributeValue::S("alice#not/an/id".into())),
        (REGISTERED_AT, AttributeValue::S("yesterday".into())),
        (TTL_ATTRIBUTE, AttributeValue::S("soon".into())),
        (ENDPOINT, AttributeValue::N("1".into())),
    ] {
        let mut item = good.clone();
        item.insert(name.to_string(), value);
        assert!(
            matches!(item_to_device(&item), Err(DeviceError::Corrupt(_))),
            "{name}"
        );
    }
}

/// Entries for `spec`: a user name per live device, `-` for an expired one, `?` for an
/// item that is not a device.
fn entries(spec: &[&str]) -> Vec<Entry> {
    spec.iter()
        .enumerate()
        .map(|(i, user)| {
            let name = if matches!(*user, "-" | "?") {
                "x"
            } else {
                user
            };
            let mut device = device("acme", name, &format!("https://p.example/{i}"));
            if *user == "-" {
                device.expires_at = 0;
            }
            let mut item = device_to_item(&device).unwrap();
            if *user == "?" {
                item.remove(ENDPOINT);
            }
            Entry::read(item, &device.tenant, now_secs())
        })
        .collect()
}

fn users(page: &[Entry]) -> Vec<String> {
    page.iter()
        .map(|e| match (&e.device, e.corrupt) {
            (Some(d), _) => d.user.to_string(),
            (None, true) => "?".into(),
            (None, false) => "-".into(),
        })
        .collect()
}

#[test]
fn a_page_ends_before_a_user_who_goes_on_past_it() {
    let (page, more) = cut_page(entries(&["a", "b", "b", "b"]), 3, false);
    assert_eq!((users(&page), more), (vec!["a".to_string()], true));
    // Alone on the page, the user is split.
    let (page, more) = cut_page(entries(&["b", "b", "b", "b"]), 3, false);
    assert_eq!((page.len(), more), (3, true));
    // A user ending exactly at the page's end stays whole on it.
    let (page, more) = cut_page(entries(&["a", "b", "b", "c"]), 3, false);
    assert_eq!(
        (users(&page), more),
        (vec!["a".into(), "b".into(), "b".into()], true)
    );
}

#[test]
fn expired_and_odd_items_do_not_count_toward_the_limit() {
    let (page, more) = cut_page(entries(&["a", "-", "?", "a", "-", "b"]), 2, false);
    assert_eq!(users(&page), ["a", "-", "?", "a"]);
    assert!(more);
    let (page, more) = cut_page(entries(&["a", "-", "?", "-"]), 2, false);
    assert_eq!((page.len(), more), (4, false));
    // Read short of the end: more follows even without a next device in hand.
    let (page, more) = cut_page(entries(&["a", "-"]), 5, true);
    assert_eq!((page.len(), more), (2, true));
}

#[test]
fn continuations_of_other_tenants_or_tables_are_refused() {
    let acme = TenantId::parse("acme").unwrap();
    let ok = Continuation {
        pk: "D#acme".into(),
        sk: "alice#abc".into(),
    };
    assert!(start_key(&ok.encode(), &acme).is_ok());
    for (pk, sk) in [("D#globex", "alice#abc"), ("T#acme", "c-1"), ("D#acme", "")] {
        let text = Continuation {
            pk: pk.into(),
            sk: sk.into(),
        }
        .encode();
        assert!(
            matches!(
                start_key(&text, &acme),
                Err(DeviceError::InvalidContinuation(_))
            ),
            "{pk} {sk}"
        );
    }
}
